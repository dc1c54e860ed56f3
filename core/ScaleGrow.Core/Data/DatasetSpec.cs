using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScaleGrow.Data;

/// <summary>
/// Which dataset a run trains on and how it is prepared. The names are the image tasks of the thesis (section 3.5.1,
/// table 3-17: MNIST, CIFAR-10, CIFAR-100) plus Fashion-MNIST, the default because Debian ships it in full. The
/// thesis states no split, normalisation or augmentation, so the defaults are the common practice: a 10% validation
/// split of the training set, per-channel normalisation and each dataset's usual light augmentation. Limits take a
/// seeded random subset, so small runs still see every class.
/// Positional, so that the defaults survive source-generated JSON (which resets unset init-only properties to
/// default(T), dotnet/runtime#84484); <c>new DatasetSpec { Name = … }</c> and <c>with</c> work as usual.
/// </summary>
/// <param name="Name"><c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c> or <c>cifar100</c>.</param>
/// <param name="Directory">Where the files are; null means the dataset's default folder (see
/// <see cref="DatasetLoader.ResolveDirectory"/>).</param>
/// <param name="TrainLimit">Use at most this many samples of the training files (before the validation split),
/// chosen by a seeded shuffle so every class stays represented. Null: all of them.</param>
/// <param name="TestLimit">Use at most this many test samples, chosen by a seeded shuffle. Null: all of them.</param>
/// <param name="ValidationFraction">Share of the training samples held out for validation by a seeded split
/// (0 to 0.5).</param>
/// <param name="Seed">Seed of the limits and the validation split (batch order and augmentation have their
/// own).</param>
/// <param name="Augment">Training augmentation; null means the dataset's default
/// (<see cref="AugmentSpec.DefaultFor"/>).</param>
/// <param name="Normalize">Scale pixels to zero mean and unit variance per channel, with statistics measured on the
/// training split.</param>
/// <param name="CoarseLabels">CIFAR-100 only: the 20 coarse superclasses instead of the 100 fine classes.</param>
public sealed record DatasetSpec(
    string Name = DatasetSpec.FashionMnist,
    string? Directory = null,
    int? TrainLimit = null,
    int? TestLimit = null,
    double ValidationFraction = 0.1,
    long Seed = 0,
    AugmentSpec? Augment = null,
    bool Normalize = true,
    bool CoarseLabels = false)
{
    public const string FashionMnist = "fashion-mnist";
    public const string Mnist = "mnist";
    public const string Cifar10 = "cifar10";
    public const string Cifar100 = "cifar100";

    /// <summary>The names <see cref="Name"/> accepts.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = new[] { FashionMnist, Mnist, Cifar10, Cifar100 };

    /// <summary>The augmentation in force: <see cref="Augment"/> or the dataset's default.</summary>
    [JsonIgnore]
    public AugmentSpec EffectiveAugment => Augment ?? AugmentSpec.DefaultFor(Name);

    /// <summary>Throws <see cref="InvalidSpecException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("dataset: " + message);
        }
        Check(KnownNames.Contains(Name), $"unknown name '{Name}', expected one of {string.Join(", ", KnownNames)}");
        Check(Directory is null || Directory.Trim().Length > 0, "directory must not be empty");
        Check(TrainLimit is null or >= 10, $"trainLimit must be at least 10 (images to train and to validate on), got {TrainLimit}");
        Check(TestLimit is null or >= 1, $"testLimit must be positive, got {TestLimit}");
        Check(ValidationFraction is >= 0 and <= 0.5,
            $"validationFraction must be in [0, 0.5], got {ValidationFraction}");
        Check(!CoarseLabels || Name == Cifar100, $"coarseLabels applies to {Cifar100} only, not '{Name}'");
        Augment?.Validate();
    }

    public string ToJson() => JsonSerializer.Serialize(this, DataJson.Default.DatasetSpec);

    /// <summary>Parses and validates a spec; malformed JSON is an <see cref="InvalidSpecException"/>.</summary>
    public static DatasetSpec FromJson(string json, string source = "dataset spec") =>
        SpecJson.Parse(json, DataJson.Default.DatasetSpec, source, "not a valid dataset spec", "dataset spec is null",
            spec => spec.Validate(), argumentErrorsAreInvalid: true);
}

/// <summary>
/// Training-time augmentation, applied per batch on tensors by <see cref="BatchLoader"/>: a random crop of the
/// original size from the image zero-padded by <see cref="CropPadding"/> pixels on each side, and a horizontal flip
/// of each sample with probability 1/2. The thesis (table 3-18) does not list its augmentation; these are the standard
/// light augmentations for these small-image datasets.
/// </summary>
/// <param name="CropPadding">Zero padding on each side before the random crop (0: no crop).</param>
/// <param name="HorizontalFlip">Mirror each sample left to right with probability 1/2.</param>
public sealed record AugmentSpec(int CropPadding = 0, bool HorizontalFlip = false)
{
    /// <summary>No augmentation (what evaluation uses).</summary>
    public static AugmentSpec None { get; } = new();

    [JsonIgnore]
    public bool IsNone => CropPadding == 0 && !HorizontalFlip;

    /// <summary>
    /// Fashion-MNIST: crop with padding 2 and flip (garments are left-right symmetric); MNIST: crop with padding 2,
    /// no flip (a mirrored digit is another glyph); CIFAR: crop with padding 4 and flip.
    /// </summary>
    public static AugmentSpec DefaultFor(string datasetName) => datasetName switch
    {
        DatasetSpec.FashionMnist => new AugmentSpec { CropPadding = 2, HorizontalFlip = true },
        DatasetSpec.Mnist => new AugmentSpec { CropPadding = 2 },
        DatasetSpec.Cifar10 or DatasetSpec.Cifar100 => new AugmentSpec { CropPadding = 4, HorizontalFlip = true },
        _ => None,
    };

    public void Validate()
    {
        if (CropPadding is < 0 or > 16)
            throw new InvalidSpecException($"dataset: augment.cropPadding must be in 0..16, got {CropPadding}");
    }
}

/// <summary>Source-generated JSON for dataset specs (camelCase, like the other specs).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false,
    AllowTrailingCommas = false, RespectNullableAnnotations = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(DatasetSpec))]
[JsonSerializable(typeof(AugmentSpec))]
internal partial class DataJson : JsonSerializerContext;
