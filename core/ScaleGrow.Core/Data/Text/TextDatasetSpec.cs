using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScaleGrow.Data.Text;

/// <summary>
/// Which text data a run trains on and how it is tokenized. Classification (<see cref="Task"/>
/// <c>classification</c>): the fortunes topic task (Debian's <c>fortunes</c>, see docs/data-fortunes.md) or the
/// user's own <c>label&lt;TAB&gt;text</c> file. Language modeling (<c>language-model</c>, decoders): every fortune,
/// or the user's plain text file (<c>text-file</c>, documents separated by blank lines), split by document.
/// Positional, like <see cref="DatasetSpec"/>, so its defaults survive source-generated JSON.
/// </summary>
/// <param name="Name"><c>fortunes</c>, <c>labelled-text</c> (classification) or <c>text-file</c> (language
/// model).</param>
/// <param name="Path">Fortunes: the folder of topic files (null: <see cref="FortuneReader.DefaultDirectory"/>).
/// Labelled text, text file: the file (required).</param>
/// <param name="MaxClasses">Fortunes: how many topics become classes (<see cref="FortuneTaskOptions"/>).</param>
/// <param name="MinFortunesPerClass">Fortunes: the least a topic must keep to be a class.</param>
/// <param name="MaxCharacters">Fortunes: longer fortunes are dropped.</param>
/// <param name="ValidationFraction">Share of each class held out for validation.</param>
/// <param name="TestFraction">Share of each class held out for test.</param>
/// <param name="Seed">Seed of the stratified split.</param>
/// <param name="VocabSize">WordPiece vocabulary size, built from the training split
/// (<see cref="TextTokenizerOptions"/>).</param>
/// <param name="LowerCase">Lower-case text before tokenizing.</param>
/// <param name="SequenceLength">Classification: ids per row ([CLS], pieces, [SEP], [PAD]s; longer texts are cut).
/// Language model: the context window.</param>
/// <param name="Task"><c>classification</c> (encoders) or <c>language-model</c> (decoders: next-token prediction
/// over the documents joined by [SEP], evaluated by perplexity).</param>
public sealed record TextDatasetSpec(
    string Name = TextDatasetSpec.Fortunes,
    string? Path = null,
    int MaxClasses = 10,
    int MinFortunesPerClass = 300,
    int MaxCharacters = 600,
    double ValidationFraction = 0.1,
    double TestFraction = 0.1,
    long Seed = 0,
    int VocabSize = 4000,
    bool LowerCase = true,
    int SequenceLength = 160,
    string Task = TextDatasetSpec.Classification)
{
    /// <summary>Checkpoint metadata key of a text model's data spec (its labels and task travel with the model).</summary>
    public const string MetadataKey = "scalegrow.textData";

    public const string Fortunes = "fortunes";
    public const string LabelledText = "labelled-text";
    public const string TextFile = "text-file";
    public const string Classification = "classification";
    public const string LanguageModel = "language-model";

    /// <summary>The names <see cref="Name"/> accepts.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = new[] { Fortunes, LabelledText, TextFile };

    /// <summary>The tasks <see cref="Task"/> accepts.</summary>
    public static IReadOnlyList<string> KnownTasks { get; } = new[] { Classification, LanguageModel };

    [JsonIgnore]
    public bool IsLanguageModel => Task == LanguageModel;

    [JsonIgnore]
    public FortuneTaskOptions FortuneOptions =>
        new(MaxClasses, MinFortunesPerClass, MaxCharacters, ValidationFraction, TestFraction, Seed);

    [JsonIgnore]
    public TextTokenizerOptions TokenizerOptions => new(VocabSize, LowerCase);

    /// <summary>Throws <see cref="InvalidSpecException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("text dataset: " + message);
        }
        Check(KnownNames.Contains(Name), $"unknown name '{Name}', expected one of {string.Join(", ", KnownNames)}");
        Check(Path is null || Path.Trim().Length > 0, "path must not be empty");
        Check(KnownTasks.Contains(Task), $"unknown task '{Task}', expected one of {string.Join(", ", KnownTasks)}");
        Check(Name != LabelledText || Path is not null, "labelled-text needs path (a label<TAB>text file)");
        Check(Name != TextFile || Path is not null, "text-file needs path (a UTF-8 text file)");
        Check(Name != LabelledText || !IsLanguageModel,
            "labelled-text is classification data; a language model reads text-file or fortunes");
        Check(Name != TextFile || IsLanguageModel, "text-file is language-model data; set task language-model");
        Check(ValidationFraction is >= 0 and < 0.5,
            $"validationFraction must be in [0, 0.5), got {ValidationFraction}");
        Check(TestFraction is >= 0 and < 0.5, $"testFraction must be in [0, 0.5), got {TestFraction}");
        Check(!IsLanguageModel || (ValidationFraction > 0 && TestFraction > 0),
            "a language model needs validationFraction > 0 and testFraction > 0 (held-out documents)");
        Check(SequenceLength is >= 2 and <= 4096, $"sequenceLength must be in 2..4096, got {SequenceLength}");
        if (Name == Fortunes && !IsLanguageModel) FortuneOptions.Validate();
        TokenizerOptions.Validate();
    }

    public string ToJson() => JsonSerializer.Serialize(this, TextJson.Default.TextDatasetSpec);

    /// <summary>Parses and validates a spec; malformed JSON is an <see cref="InvalidSpecException"/>.</summary>
    public static TextDatasetSpec FromJson(string json, string source = "text dataset spec") =>
        SpecJson.Parse(json, TextJson.Default.TextDatasetSpec, source, "not a valid text dataset spec",
            "text dataset spec is null", spec => spec.Validate(), argumentErrorsAreInvalid: true);
}
