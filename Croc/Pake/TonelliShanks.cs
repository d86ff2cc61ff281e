using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Pake;

/// <summary>
/// Square roots modulo a prime p ≡ 1 (mod 4) by Tonelli–Shanks: two modular exponentiations plus at most s² modular
/// squarings, where p − 1 = q·2^s. BouncyCastle's generic square root for such primes (Lucas sequences with random
/// trials) made decompressing one SIEC point cost ~9 ms; this takes a fraction of a millisecond. Used only on public
/// values (received points, the fixed M and N).
/// </summary>
internal sealed class TonelliShanks
{
    private readonly BigInteger _p;
    private readonly BigInteger _q;
    private readonly BigInteger _halfQPlusOne;
    private readonly BigInteger _nonResidueRoot;
    private readonly int _s;

    public TonelliShanks(BigInteger p)
    {
        if (!p.TestBit(0) || p.TestBit(1) || p.CompareTo(BigInteger.ValueOf(5)) < 0)
        {
            throw new ArgumentException("The modulus must be a prime congruent to 1 mod 4.", nameof(p));
        }

        _p = p;
        var pMinusOne = p.Subtract(BigInteger.One);
        _s = pMinusOne.GetLowestSetBit();
        _q = pMinusOne.ShiftRight(_s);
        _halfQPlusOne = _q.Add(BigInteger.One).ShiftRight(1);

        // The smallest quadratic non-residue z (Euler's criterion: z^((p-1)/2) = -1); c = z^q has order exactly 2^s.
        var halfPMinusOne = pMinusOne.ShiftRight(1);
        var z = BigInteger.Two;
        while (!z.ModPow(halfPMinusOne, p).Equals(pMinusOne))
        {
            // Half of all residues mod a prime are non-residues, so a prime finds one within a few steps; a composite
            // modulus may have none of this form.
            z = z.Add(BigInteger.One);
            if (z.BitLength > 16)
            {
                throw new ArgumentException("The modulus must be a prime congruent to 1 mod 4.", nameof(p));
            }
        }

        _nonResidueRoot = z.ModPow(_q, p);
    }

    /// <summary>A square root of <paramref name="a"/> mod p (the one the algorithm lands on; the other is p − r), or null if there is none.</summary>
    public BigInteger? Sqrt(BigInteger a)
    {
        a = a.Mod(_p);
        if (a.SignValue == 0)
        {
            return BigInteger.Zero;
        }

        var m = _s;
        var c = _nonResidueRoot;
        var t = a.ModPow(_q, _p);
        var r = a.ModPow(_halfQPlusOne, _p);

        // Invariant: r² = a·t and t has order 2^i for some i < m. For a non-residue t's order is 2^s, found below as i == m.
        while (!t.Equals(BigInteger.One))
        {
            var i = 0;
            var power = t;
            while (!power.Equals(BigInteger.One))
            {
                power = power.Multiply(power).Mod(_p);
                if (++i == m)
                {
                    return null;
                }
            }

            var b = c;
            for (var k = 0; k < m - i - 1; k++)
            {
                b = b.Multiply(b).Mod(_p);
            }

            m = i;
            c = b.Multiply(b).Mod(_p);
            t = t.Multiply(c).Mod(_p);
            r = r.Multiply(b).Mod(_p);
        }

        return r.Multiply(r).Mod(_p).Equals(a) ? r : null;
    }
}
