namespace CrocNet.Tests;

/// <summary>The temporary folders one test made: each fixture creates them with its prefix and deletes them in its tear-down.</summary>
internal sealed class TempFolders(string prefix)
{
    private readonly List<string> _folders = [];

    /// <summary>The folder made most recently.</summary>
    public string Last => _folders[^1];

    /// <summary>A new, empty folder under the system's temporary folder, deleted by <see cref="DeleteAll"/>.</summary>
    public string New()
    {
        var folder = Directory.CreateTempSubdirectory(prefix).FullName;
        _folders.Add(folder);
        return folder;
    }

    /// <summary>Deletes every folder made so far (one a test removed itself is skipped).</summary>
    public void DeleteAll()
    {
        foreach (var folder in _folders)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }

        _folders.Clear();
    }
}
