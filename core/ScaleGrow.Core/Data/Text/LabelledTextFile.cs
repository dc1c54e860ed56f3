using System.Text;

namespace ScaleGrow.Data.Text;

/// <summary>A user's labelled texts as read from one file: class names in sorted order and the samples.</summary>
public sealed record LabelledTextSet(
    string Path, IReadOnlyList<string> ClassNames, IReadOnlyList<LabelledText> Samples);

/// <summary>
/// Reads a user's own classification data: one <c>label&lt;TAB&gt;text</c> per line, UTF-8 (a BOM is allowed).
/// Blank lines are skipped; the label is everything before the first tab, the text everything after it (later tabs
/// stay in the text, as whitespace). Labels are mapped to class ids in ordinal sorted order, so the same label set
/// always gets the same ids whatever the line order. Any malformed line is a <see cref="DataFormatException"/>
/// naming the file and the 1-based line number.
/// </summary>
public static class LabelledTextFile
{
    /// <summary>Strict: a byte sequence that is not UTF-8 is an error (naming the line), not silently replaced,
    /// because it usually means a file in another encoding whose labels would then be wrong.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static readonly byte[] Utf8Bom = { 0xEF, 0xBB, 0xBF };

    public static LabelledTextSet Read(string path)
    {
        var bytes = DataFiles.ReadAllBytes(path, "a label<TAB>text file");
        var rows = new List<(string Label, string Text)>();
        // Lines are cut on the '\n' byte and decoded one by one, so a bad byte is reported on its own line.
        int start = bytes.AsSpan().StartsWith(Utf8Bom) ? Utf8Bom.Length : 0;
        for (int lineNumber = 1; start <= bytes.Length; lineNumber++)
        {
            int length = bytes.AsSpan(start).IndexOf((byte)'\n');
            if (length < 0) length = bytes.Length - start;
            var raw = bytes.AsSpan(start, length);
            start += length + 1;
            if (raw.Length > 0 && raw[^1] == (byte)'\r') raw = raw[..^1];
            string line;
            try
            {
                line = StrictUtf8.GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                throw new DataFormatException($"{path}:{lineNumber}: not valid UTF-8");
            }
            if (string.IsNullOrWhiteSpace(line)) continue;
            rows.Add(ParseLine(path, lineNumber, line));
        }
        if (rows.Count == 0) throw new DataFormatException($"{path}: no labelled lines (expected label<TAB>text)");
        var classNames = rows.Select(r => r.Label).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .ToArray();
        var ids = classNames.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id,
            StringComparer.Ordinal);
        var samples = rows.Select(r => new LabelledText(r.Text, ids[r.Label])).ToArray();
        return new LabelledTextSet(path, classNames, samples);
    }

    /// <summary>One non-blank line; <paramref name="lineNumber"/> is 1-based, for the message.</summary>
    internal static (string Label, string Text) ParseLine(string path, int lineNumber, string line)
    {
        int tab = line.IndexOf('\t');
        if (tab < 0)
            throw new DataFormatException($"{path}:{lineNumber}: no tab; expected label<TAB>text");
        string label = line[..tab].Trim();
        if (label.Length == 0)
            throw new DataFormatException($"{path}:{lineNumber}: empty label before the tab; expected label<TAB>text");
        string text = TextCleaner.Normalize(line[(tab + 1)..]);
        if (text.Length == 0)
            throw new DataFormatException($"{path}:{lineNumber}: empty text after the tab (label '{label}')");
        return (label, text);
    }

    /// <summary>Reads the file and splits it like the fortunes task (seeded, stratified by label).</summary>
    public static LabelledTextSplits ReadSplits(string path, double validationFraction, double testFraction,
        long seed)
    {
        var set = Read(path);
        return LabelledTextSplits.Stratified(Path.GetFileName(path), set.ClassNames, set.Samples,
            validationFraction, testFraction, seed);
    }
}
