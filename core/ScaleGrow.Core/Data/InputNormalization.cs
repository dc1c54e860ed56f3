using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScaleGrow.Data;

/// <summary>
/// The input pipeline an image model was trained with, stored in its checkpoint (<see cref="MetadataKey"/>) so every
/// later use — <c>eval</c>, <c>predict</c>, quantization's calibration — feeds it what training fed it: uint8 pixels
/// (N, C, H, W) scaled to [0, 1], then <c>(x - Mean[c]) / Std[c]</c> per channel. The statistics are those of the run's
/// own training split; normalising with another data set's statistics shifts every logit (issue 16: 70.60 % in
/// <c>eval</c> against 70.30 % in the run's report, logits moved by up to 0.39).
/// </summary>
public sealed record InputNormalization
{
    /// <summary>Checkpoint metadata key (a JSON object; see docs/checkpoint-format.md, "Input pipeline").</summary>
    public const string MetadataKey = "scalegrow.input";

    /// <summary>The dataset the model was trained on (<see cref="DatasetSpec.Name"/>), the default for evaluation.
    /// </summary>
    public required string Dataset { get; init; }
    public required int Channels { get; init; }
    public required int Height { get; init; }
    public required int Width { get; init; }

    /// <summary>Per-channel mean of the training pixels in [0, 1] units.</summary>
    public required double[] Mean { get; init; }

    /// <summary>Per-channel standard deviation of the training pixels in [0, 1] units (positive).</summary>
    public required double[] Std { get; init; }

    /// <summary>What the pipeline of <paramref name="data"/> does to its inputs.</summary>
    public static InputNormalization Of(DataSplits data) => new()
    {
        Dataset = data.Spec.Name, Channels = data.Channels, Height = data.Height, Width = data.Width,
        Mean = data.Mean.ToArray(), Std = data.Std.ToArray(),
    };

    public string ToJson() => JsonSerializer.Serialize(this, InputNormalizationJson.Default.InputNormalization);

    /// <summary>The pipeline a checkpoint records; null for a checkpoint written before it was recorded (or a text
    /// model). A malformed entry is a <see cref="CheckpointFormatException"/>.</summary>
    public static InputNormalization? FromMetadata(IReadOnlyDictionary<string, string> metadata, string source)
    {
        if (!metadata.TryGetValue(MetadataKey, out var json)) return null;
        InputNormalization? value;
        try
        {
            value = JsonSerializer.Deserialize(json, InputNormalizationJson.Default.InputNormalization);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{source}: '{MetadataKey}' is not an input pipeline: " +
                                                e.Message.ReplaceLineEndings(" "));
        }
        string? problem = value switch
        {
            null => "is null",
            { Channels: < 1 or > 4096 } => $"has {value.Channels} channels",
            { Height: < 1 or > 65536 } or { Width: < 1 or > 65536 } => $"has a {value.Height}x{value.Width} image size",
            _ when value.Mean is null || value.Std is null || value.Mean.Length != value.Channels ||
                   value.Std.Length != value.Channels => $"needs {value.Channels} means and standard deviations",
            _ when value.Mean.Any(m => !double.IsFinite(m)) => "has a mean that is not finite",
            _ when value.Std.Any(s => !(s > 0) || !double.IsFinite(s)) =>
                "has a standard deviation that is not positive",
            _ => null,
        };
        if (problem is not null) throw new CheckpointFormatException($"{source}: '{MetadataKey}' {problem}");
        return value;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(InputNormalization))]
internal partial class InputNormalizationJson : JsonSerializerContext;
