using System.Text.Json;

namespace CrocNet.Files;

/// <summary>
/// Parses the manifest's JSON as its pieces arrive, handing over each entry as soon as it is complete, so
/// a hostile manifest is refused at its first bad entry (or its 1,000,001st) and never sits whole in memory
/// as bytes. Only the current piece and one unfinished value are buffered.
/// </summary>
internal sealed class ManifestParser
{
    /// <summary>The largest single JSON value (the text, or one entry) the parser will hold while it is incomplete.</summary>
    public const int MaxPendingBytes = 16 * 1024 * 1024;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 8 };

    private readonly Action<ManifestEntry> _onEntry;
    private readonly Manifest _manifest = new();
    private byte[] _pending = [];
    private int _pendingLength;
    private JsonReaderState _state = new(ReaderOptions);
    private Stage _stage = Stage.Start;
    private bool _sawEntries;

    /// <param name="onEntry">Called with each entry in order, before it is kept; it may throw to refuse the manifest.</param>
    public ManifestParser(Action<ManifestEntry> onEntry) => _onEntry = onEntry;

    private enum Stage
    {
        Start,
        InObject,
        InEntries,
        Done,
    }

    /// <summary>Feeds the next piece; <paramref name="final"/> on the last one. Throws <see cref="CrocProtocolException"/> on malformed JSON.</summary>
    public void Feed(ReadOnlySpan<byte> piece, bool final)
    {
        var needed = _pendingLength + piece.Length;
        if (needed > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(needed, _pending.Length * 2));
        }

        piece.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength = needed;
        try
        {
            var consumed = Parse(_pending.AsSpan(0, _pendingLength), final);
            _pending.AsSpan(consumed, _pendingLength - consumed).CopyTo(_pending);
            _pendingLength -= consumed;
        }
        catch (JsonException ex)
        {
            throw new CrocProtocolException("The sender's manifest is malformed.", ex);
        }

        if (_pendingLength > MaxPendingBytes)
        {
            throw new CrocProtocolException("The sender's manifest holds a value larger than 16 MiB.");
        }

        if (final && (_stage != Stage.Done || _pendingLength != 0))
        {
            throw new CrocProtocolException("The sender's manifest ended before it was complete.");
        }
    }

    /// <summary>The manifest's fields, with every entry handed over so far (call after the final piece).</summary>
    public Manifest Result => _sawEntries ? _manifest : throw new CrocProtocolException("The sender's manifest has no entry list.");

    /// <summary>Parses as far as complete values allow; returns the bytes consumed.</summary>
    private int Parse(ReadOnlySpan<byte> data, bool final)
    {
        var reader = new Utf8JsonReader(data, final, _state);
        while (true)
        {
            // Every step either completes or leaves the reader where it was: a copy marks the step's start.
            var mark = reader;
            if (!Step(ref reader))
            {
                _state = mark.CurrentState;
                return (int)mark.BytesConsumed;
            }

            if (_stage == Stage.Done)
            {
                // Only whitespace may follow; a final reader proves it, a partial one waits for more.
                if (final && reader.Read())
                {
                    throw new CrocProtocolException("The sender's manifest has data after its end.");
                }

                _state = reader.CurrentState;
                return (int)reader.BytesConsumed;
            }
        }
    }

    private bool Step(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            return false;
        }

        switch (_stage)
        {
            case Stage.Start:
                Expect(reader.TokenType == JsonTokenType.StartObject);
                _stage = Stage.InObject;
                return true;
            case Stage.InObject:
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    _stage = Stage.Done;
                    return true;
                }

                Expect(reader.TokenType == JsonTokenType.PropertyName);
                return Property(ref reader);
            case Stage.InEntries:
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    _stage = Stage.InObject;
                    return true;
                }

                Expect(reader.TokenType == JsonTokenType.StartObject);
                var probe = reader;
                if (!probe.TrySkip())
                {
                    return false;
                }

                var entry = JsonSerializer.Deserialize(ref reader, TransferJsonContext.Default.ManifestEntry);
                Expect(entry is not null);
                _onEntry(entry!);
                _manifest.Entries.Add(entry!);
                return true;
            default:
                throw new CrocProtocolException("The sender's manifest has data after its end.");
        }
    }

    private bool Property(ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("entries"u8))
        {
            if (!reader.Read())
            {
                return false;
            }

            Expect(reader.TokenType == JsonTokenType.StartArray && !_sawEntries);
            _sawEntries = true;
            _stage = Stage.InEntries;
            return true;
        }

        var field = reader.ValueTextEquals("version"u8) ? 1 : reader.ValueTextEquals("chunk_size"u8) ? 2 : reader.ValueTextEquals("hash"u8) ? 3 : reader.ValueTextEquals("text"u8) ? 4 : reader.ValueTextEquals("resume"u8) ? 5 : 0;
        if (!reader.Read())
        {
            return false;
        }

        if (field == 0)
        {
            // Unknown fields are skipped, as for every other message: later versions may add optional ones.
            return reader.TrySkip();
        }

        if (reader.TokenType == JsonTokenType.Null && field is 3 or 4 or 5)
        {
            return true;
        }

        switch (field)
        {
            case 1:
                Expect(reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out _));
                _manifest.Version = reader.GetInt32();
                break;
            case 2:
                Expect(reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out _));
                _manifest.ChunkSize = reader.GetInt32();
                break;
            case 3:
                Expect(reader.TokenType == JsonTokenType.String);
                _manifest.Hash = reader.GetString();
                break;
            case 5:
                Expect(reader.TokenType is JsonTokenType.True or JsonTokenType.False);
                _manifest.Resume = reader.GetBoolean();
                break;
            default:
                Expect(reader.TokenType == JsonTokenType.String);
                _manifest.Text = reader.GetString();
                break;
        }

        return true;
    }

    private static void Expect(bool condition)
    {
        if (!condition)
        {
            throw new CrocProtocolException("The sender's manifest is malformed.");
        }
    }
}
