namespace ScaleGrow.Data.Text;

/// <summary>
/// How the fortunes topic-classification task is cut from a <see cref="FortuneCorpus"/>. The thesis evaluates BERT
/// growth on IMDB and SST-2 (tables 3-17 and 3-28), which cannot be had here, so this real-text task stands in; the
/// defaults give ten classes of 546–1211 fortunes, measured and documented in docs/data-fortunes.md.
/// </summary>
/// <param name="MaxClasses">Keep at most this many topics: the largest eligible ones.</param>
/// <param name="MinFortunesPerClass">A topic is eligible when it keeps at least this many fortunes after the
/// duplicate and length filters.</param>
/// <param name="MaxCharacters">Fortunes longer than this (after cleaning) are dropped, not truncated: a long one
/// would be cut at the model's sequence length and lose its ending, where the attribution usually is. 600 characters
/// is about 150 word pieces, so the kept ones fit a 128–160 token model.</param>
/// <param name="ValidationFraction">Share of each class held out for validation.</param>
/// <param name="TestFraction">Share of each class held out for test.</param>
/// <param name="Seed">Seed of the stratified split.</param>
public sealed record FortuneTaskOptions(
    int MaxClasses = 10,
    int MinFortunesPerClass = 300,
    int MaxCharacters = 600,
    double ValidationFraction = 0.1,
    double TestFraction = 0.1,
    long Seed = 0)
{
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("fortunes task: " + message);
        }
        Check(MaxClasses >= 2, $"maxClasses must be at least 2, got {MaxClasses}");
        Check(MinFortunesPerClass >= 1, $"minFortunesPerClass must be positive, got {MinFortunesPerClass}");
        Check(MaxCharacters >= 1, $"maxCharacters must be positive, got {MaxCharacters}");
        Check(ValidationFraction is >= 0 and < 0.5,
            $"validationFraction must be in [0, 0.5), got {ValidationFraction}");
        Check(TestFraction is >= 0 and < 0.5, $"testFraction must be in [0, 0.5), got {TestFraction}");
    }
}

/// <summary>What the selection rule did to one topic file.</summary>
/// <param name="Topic">The topic file's name.</param>
/// <param name="Read">Fortunes read from the file.</param>
/// <param name="Ambiguous">Dropped because the same text is also in another topic file (its label is ambiguous).
/// </param>
/// <param name="Repeated">Dropped as a repeat of an earlier fortune of the same file.</param>
/// <param name="TooLong">Dropped as longer than <see cref="FortuneTaskOptions.MaxCharacters"/>.</param>
/// <param name="Kept">What remains.</param>
/// <param name="Selected">Whether the topic became a class.</param>
public sealed record FortuneTopicCount(
    string Topic, int Read, int Ambiguous, int Repeated, int TooLong, int Kept, bool Selected);

/// <summary>The chosen classes, every kept fortune of them (label = class id), and the per-topic accounting.</summary>
public sealed record FortuneSelection(
    IReadOnlyList<string> ClassNames, IReadOnlyList<LabelledText> Samples, IReadOnlyList<FortuneTopicCount> Topics);

/// <summary>
/// The topic-classification task "which file does this fortune come from". The rule, in order:
/// (1) a text found in more than one topic file is dropped from all of them and a repeat within one file keeps its
/// first copy — so no text sits in two splits or under two labels; (2) fortunes longer than
/// <see cref="FortuneTaskOptions.MaxCharacters"/> are dropped; (3) the topics with at least
/// <see cref="FortuneTaskOptions.MinFortunesPerClass"/> remaining fortunes are eligible, and the
/// <see cref="FortuneTaskOptions.MaxClasses"/> largest of them (ties by name) become the classes, numbered in name
/// order; (4) a seeded stratified split (<see cref="LabelledTextSplits.Stratified"/>).
/// </summary>
public static class FortuneClassification
{
    public const string TaskName = "fortunes";

    /// <summary>Steps 1–3 of the rule.</summary>
    public static FortuneSelection Select(FortuneCorpus corpus, FortuneTaskOptions options)
    {
        options.Validate();
        // How many distinct topic files each text occurs in.
        var filesPerText = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var topic in corpus.Topics)
            foreach (var text in topic.Fortunes.Distinct(StringComparer.Ordinal))
                filesPerText[text] = filesPerText.GetValueOrDefault(text) + 1;

        var kept = new List<(FortuneTopic Topic, List<string> Fortunes, FortuneTopicCount Count)>();
        foreach (var topic in corpus.Topics)
        {
            int ambiguous = 0, repeated = 0, tooLong = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var fortunes = new List<string>();
            foreach (var text in topic.Fortunes)
            {
                if (filesPerText[text] > 1) ambiguous++;
                else if (!seen.Add(text)) repeated++;
                else if (text.Length > options.MaxCharacters) tooLong++;
                else fortunes.Add(text);
            }
            kept.Add((topic, fortunes, new FortuneTopicCount(topic.Name, topic.Fortunes.Count, ambiguous, repeated,
                tooLong, fortunes.Count, Selected: false)));
        }

        var chosen = kept.Where(k => k.Fortunes.Count >= options.MinFortunesPerClass)
            .OrderByDescending(k => k.Fortunes.Count).ThenBy(k => k.Topic.Name, StringComparer.Ordinal)
            .Take(options.MaxClasses)
            .Select(k => k.Topic.Name).ToHashSet(StringComparer.Ordinal);
        if (chosen.Count < 2)
            throw new DataFormatException($"{corpus.Directory}: only {chosen.Count} topic file(s) keep at least " +
                                          $"{options.MinFortunesPerClass} fortunes of at most " +
                                          $"{options.MaxCharacters} characters; a classification task needs 2");
        var classNames = chosen.Order(StringComparer.Ordinal).ToArray();
        var samples = new List<LabelledText>();
        for (int label = 0; label < classNames.Length; label++)
        {
            var entry = kept.First(k => k.Topic.Name == classNames[label]);
            samples.AddRange(entry.Fortunes.Select(text => new LabelledText(text, label)));
        }
        var counts = kept.Select(k => k.Count with { Selected = chosen.Contains(k.Topic.Name) }).ToArray();
        return new FortuneSelection(classNames, samples, counts);
    }

    /// <summary>The whole rule: the selected classes split into train, validation and test.</summary>
    public static LabelledTextSplits Build(FortuneCorpus corpus, FortuneTaskOptions options)
    {
        var selection = Select(corpus, options);
        return LabelledTextSplits.Stratified(TaskName, selection.ClassNames, selection.Samples,
            options.ValidationFraction, options.TestFraction, options.Seed);
    }
}
