using System.Diagnostics;

namespace ScaleGrow.Data.Text;

/// <summary>
/// The prepared splits of a text-classification task and the tokenizer they were encoded with (built from
/// <see cref="Train"/>'s texts only). A checkpoint stores <see cref="Tokenizer"/>'s JSON under
/// <see cref="TextTokenizer.MetadataKey"/>. Disposing the splits frees their tensors.
/// </summary>
public sealed class TextDataSplits : IDisposable
{
    public TextDataSplits(TextDatasetSpec spec, LabelledTextSplits texts, TextTokenizer tokenizer, TextDataset train,
        TextDataset validation, TextDataset test, TimeSpan buildTime)
    {
        Spec = spec;
        Texts = texts;
        Tokenizer = tokenizer;
        Train = train;
        Validation = validation;
        Test = test;
        BuildTime = buildTime;
    }

    public TextDatasetSpec Spec { get; }

    /// <summary>The splits as strings (what the vocabulary was built from, for reports and inspection).</summary>
    public LabelledTextSplits Texts { get; }

    public TextTokenizer Tokenizer { get; }
    public TextDataset Train { get; }
    public TextDataset Validation { get; }
    public TextDataset Test { get; }

    /// <summary>Wall time of reading, splitting, building the vocabulary and encoding.</summary>
    public TimeSpan BuildTime { get; }

    public IReadOnlyList<string> ClassNames => Texts.ClassNames;
    public int NumClasses => Texts.NumClasses;
    public int SequenceLength => Train.SequenceLength;

    /// <summary>Shuffled training batches.</summary>
    public TextBatchLoader TrainBatches(int batchSize, long seed, bool dropLast = false) =>
        new(Train, new TextBatchOptions(batchSize, Shuffle: true, DropLast: dropLast, Seed: seed));

    /// <summary>Batches of <paramref name="set"/> in order.</summary>
    public static TextBatchLoader EvalBatches(TextDataset set, int batchSize) =>
        new(set, TextBatchOptions.Evaluation(batchSize));

    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
        Test.Dispose();
    }
}

/// <summary>
/// Turns a <see cref="TextDatasetSpec"/> into <see cref="TextDataSplits"/>: reads the fortunes (or the user's file),
/// splits it seeded and stratified, builds the WordPiece vocabulary from the training texts only, and encodes the
/// three splits.
/// </summary>
public static class TextDataLoader
{
    /// <summary>
    /// Reads and splits the data. With <paramref name="tokenizer"/> (the one a checkpoint carries) the texts are
    /// encoded with it; without, a vocabulary is built from the training split.
    /// </summary>
    public static TextDataSplits Load(TextDatasetSpec spec, TextTokenizer? tokenizer = null)
    {
        spec.Validate();
        var clock = Stopwatch.StartNew();
        var texts = spec.Name == TextDatasetSpec.Fortunes
            ? FortuneClassification.Build(FortuneReader.ReadDirectory(spec.Path), spec.FortuneOptions)
            : LabelledTextFile.ReadSplits(spec.Path!, spec.ValidationFraction, spec.TestFraction, spec.Seed);
        return Encode(spec, texts, clock, tokenizer);
    }

    /// <summary>Vocabulary from <paramref name="texts"/>' training split (unless given), then the three encoded
    /// datasets.</summary>
    public static TextDataSplits Encode(TextDatasetSpec spec, LabelledTextSplits texts, Stopwatch? clock = null,
        TextTokenizer? tokenizer = null)
    {
        clock ??= Stopwatch.StartNew();
        tokenizer ??= TextTokenizer.Train(texts.Train.Select(s => s.Text), spec.TokenizerOptions);
        TextDataset? train = null, validation = null, test = null;
        try
        {
            train = TextDataset.Encode($"{texts.Name}/train", texts.Train, texts.ClassNames, tokenizer,
                spec.SequenceLength);
            validation = TextDataset.Encode($"{texts.Name}/validation", texts.Validation, texts.ClassNames,
                tokenizer, spec.SequenceLength);
            test = TextDataset.Encode($"{texts.Name}/test", texts.Test, texts.ClassNames, tokenizer,
                spec.SequenceLength);
            return new TextDataSplits(spec, texts, tokenizer, train, validation, test, clock.Elapsed);
        }
        catch
        {
            train?.Dispose();
            validation?.Dispose();
            test?.Dispose();
            throw;
        }
    }
}
