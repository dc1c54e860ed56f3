namespace ScaleGrow.Data.Text;

/// <summary>One text and its class id (an index into the class names of the set it belongs to).</summary>
public readonly record struct LabelledText(string Text, int Label);

/// <summary>
/// A text-classification task split three ways, still as strings: the vocabulary is built from <see cref="Train"/>
/// only (<see cref="WordPieceVocabularyBuilder"/>), then each split is encoded into a <see cref="TextDataset"/>.
/// </summary>
public sealed class LabelledTextSplits
{
    public LabelledTextSplits(string name, IReadOnlyList<string> classNames, IReadOnlyList<LabelledText> train,
        IReadOnlyList<LabelledText> validation, IReadOnlyList<LabelledText> test)
    {
        if (classNames.Count == 0) throw new ArgumentException($"{name}: no classes", nameof(classNames));
        foreach (var (split, samples) in new[] { ("train", train), ("validation", validation), ("test", test) })
            foreach (var sample in samples)
                if (sample.Label < 0 || sample.Label >= classNames.Count)
                    throw new ArgumentException($"{name}/{split}: label {sample.Label} outside 0..{classNames.Count - 1}");
        Name = name;
        ClassNames = classNames;
        Train = train;
        Validation = validation;
        Test = test;
    }

    /// <summary>The task's name, e.g. <c>fortunes</c> or the labelled file's name.</summary>
    public string Name { get; }

    /// <summary>Class id → name.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    public IReadOnlyList<LabelledText> Train { get; }
    public IReadOnlyList<LabelledText> Validation { get; }
    public IReadOnlyList<LabelledText> Test { get; }

    public int NumClasses => ClassNames.Count;

    /// <summary>How many samples of each class (index = class id) <paramref name="samples"/> holds.</summary>
    public int[] ClassCounts(IReadOnlyList<LabelledText> samples)
    {
        var counts = new int[NumClasses];
        foreach (var sample in samples) counts[sample.Label]++;
        return counts;
    }

    /// <summary>
    /// Splits <paramref name="samples"/> per class with a seeded shuffle (SplitMix64 through
    /// <see cref="Seeds.Derive"/>, so the same seed gives the same split on every platform): each class gives
    /// round(fraction × its count) samples to test and to validation and the rest to training, so every split keeps
    /// the class balance of the whole. Within each split the samples keep their input order.
    /// </summary>
    public static LabelledTextSplits Stratified(string name, IReadOnlyList<string> classNames,
        IReadOnlyList<LabelledText> samples, double validationFraction, double testFraction, long seed)
    {
        if (validationFraction is < 0 or >= 1 || testFraction is < 0 or >= 1 ||
            validationFraction + testFraction >= 1)
            throw new InvalidSpecException($"{name}: validation ({validationFraction}) and test ({testFraction}) " +
                                           "fractions must be in [0, 1) and leave samples for training");
        var byClass = new List<int>[classNames.Count];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = new List<int>();
        for (int i = 0; i < samples.Count; i++) byClass[samples[i].Label].Add(i);
        // 0 = train, 1 = validation, 2 = test, per sample index.
        var assignment = new byte[samples.Count];
        for (int c = 0; c < byClass.Length; c++)
        {
            var members = byClass[c];
            var order = new SampleRandom(Seeds.Derive(seed, "text-split", c)).Permutation(members.Count);
            int testCount = (int)Math.Round(testFraction * members.Count, MidpointRounding.AwayFromZero);
            int validationCount = (int)Math.Round(validationFraction * members.Count, MidpointRounding.AwayFromZero);
            // A class keeps at least one training sample whatever the fractions round to.
            testCount = Math.Min(testCount, Math.Max(members.Count - 1, 0));
            validationCount = Math.Min(validationCount, Math.Max(members.Count - 1 - testCount, 0));
            for (int k = 0; k < order.Length; k++)
            {
                int sample = members[(int)order[k]];
                assignment[sample] = k < testCount ? (byte)2 : k < testCount + validationCount ? (byte)1 : (byte)0;
            }
        }
        var parts = new[] { new List<LabelledText>(), new List<LabelledText>(), new List<LabelledText>() };
        for (int i = 0; i < samples.Count; i++) parts[assignment[i]].Add(samples[i]);
        return new LabelledTextSplits(name, classNames, parts[0], parts[1], parts[2]);
    }
}
