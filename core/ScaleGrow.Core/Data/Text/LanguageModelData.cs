using System.Diagnostics;
using System.Text;

namespace ScaleGrow.Data.Text;

/// <summary>
/// The prepared splits of a language-modeling task: three flat token streams (documents encoded with
/// <see cref="Tokenizer"/> and joined by [SEP], see <see cref="TextCorpus.ToTokenStream"/>) cut by document, so no
/// document is partly in two splits. The tokenizer's vocabulary is built from the training documents only.
/// </summary>
public sealed class LanguageModelSplits(TextDatasetSpec spec, TextTokenizer tokenizer, int[] train, int[] validation,
    int[] test, (int Train, int Validation, int Test) documents, TimeSpan buildTime)
{
    public TextDatasetSpec Spec { get; } = spec;
    public TextTokenizer Tokenizer { get; } = tokenizer;
    public IReadOnlyList<int> Train { get; } = train;
    public IReadOnlyList<int> Validation { get; } = validation;
    public IReadOnlyList<int> Test { get; } = test;
    public (int Train, int Validation, int Test) Documents { get; } = documents;
    public TimeSpan BuildTime { get; } = buildTime;

    /// <summary>The context window (<see cref="TextDatasetSpec.SequenceLength"/>).</summary>
    public int Context => Spec.SequenceLength;
}

/// <summary>
/// Turns a language-model <see cref="TextDatasetSpec"/> into <see cref="LanguageModelSplits"/>: reads every fortune
/// (duplicates once) or the user's text file (<see cref="PlainTextDocuments"/>), holds out
/// <c>validationFraction + testFraction</c> of the documents by a seeded permutation (<see cref="TextCorpus.Split"/>)
/// and splits those again into validation and test, builds the vocabulary from the training documents (unless a
/// checkpoint's tokenizer is given) and encodes the three streams.
/// </summary>
public static class LanguageModelDataLoader
{
    public static LanguageModelSplits Load(TextDatasetSpec spec, TextTokenizer? tokenizer = null)
    {
        spec.Validate();
        if (!spec.IsLanguageModel)
            throw new InvalidSpecException($"text dataset: task is '{spec.Task}', not {TextDatasetSpec.LanguageModel}");
        var clock = Stopwatch.StartNew();
        IReadOnlyList<string> documents = spec.Name == TextDatasetSpec.Fortunes
            ? FortuneReader.ReadDirectory(spec.Path).AllFortunes().Distinct(StringComparer.Ordinal).ToArray()
            : PlainTextDocuments.Read(spec.Path!);
        double heldOut = spec.ValidationFraction + spec.TestFraction;
        var first = TextCorpus.Split(documents, heldOut, spec.Seed);
        var second = TextCorpus.Split(first.HeldOut, spec.TestFraction / heldOut, spec.Seed + 1);
        tokenizer ??= TextTokenizer.Train(first.Train, spec.TokenizerOptions);
        string source = spec.Path ?? spec.Name;
        int[] Stream(IReadOnlyList<string> docs, string split)
        {
            var stream = TextCorpus.ToTokenStream(docs, tokenizer).Select(id => (int)id).ToArray();
            if (stream.Length < spec.SequenceLength + 2)
                throw new DataFormatException(
                    $"{source}: the {split} split has {docs.Count} documents and {stream.Length} tokens, too few for " +
                    $"one window of {spec.SequenceLength + 1}; give more text or a shorter sequenceLength");
            return stream;
        }
        return new LanguageModelSplits(spec, tokenizer, Stream(first.Train, "training"),
            Stream(second.Train, "validation"), Stream(second.HeldOut, "test"),
            (first.Train.Count, second.Train.Count, second.HeldOut.Count), clock.Elapsed);
    }
}

/// <summary>
/// A user's plain text for language modeling: UTF-8 (a BOM is allowed), documents separated by one or more blank
/// lines, each document's lines kept with their line breaks. A byte sequence that is not UTF-8 is an error naming
/// the line, as in <see cref="LabelledTextFile"/>.
/// </summary>
public static class PlainTextDocuments
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static IReadOnlyList<string> Read(string path)
    {
        var bytes = DataFiles.ReadAllBytes(path, "a UTF-8 text file");
        int start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        string text;
        try
        {
            text = StrictUtf8.GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException e)
        {
            int at = start + Math.Max(0, e.Index);
            int line = 1 + bytes.AsSpan(0, Math.Min(at, bytes.Length)).Count((byte)'\n');
            throw new DataFormatException($"{path}:{line}: not valid UTF-8");
        }
        var documents = new List<string>();
        var current = new StringBuilder();
        foreach (var raw in text.ReplaceLineEndings("\n").Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(raw))
            {
                if (current.Length > 0) documents.Add(current.ToString());
                current.Clear();
                continue;
            }
            if (current.Length > 0) current.Append('\n');
            current.Append(raw.TrimEnd());
        }
        if (current.Length > 0) documents.Add(current.ToString());
        if (documents.Count < 3)
            throw new DataFormatException(
                $"{path}: {documents.Count} documents; a language model needs at least 3 (training, validation, " +
                "test), separated by blank lines");
        return documents;
    }
}
