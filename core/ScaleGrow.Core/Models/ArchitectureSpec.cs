using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScaleGrow.Models;

/// <summary>
/// A model is fully described by its architecture spec: the checkpoint stores it (JSON in the safetensors
/// <c>__metadata__</c>), a model is rebuilt from it alone and only then are weights loaded. Every growth operator is
/// "spec → new spec + weight mapping". Families are discriminated by <c>kind</c>: each registered family
/// (<see cref="ModelFamilies"/>) reads and writes its own specs; the built-in ones are declared below.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind", UnknownDerivedTypeHandling =
    JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(Cnn.CnnSpec), "cnn")]
[JsonDerivedType(typeof(Transformer.TransformerSpec), "transformer")]
[JsonDerivedType(typeof(Decoder.DecoderSpec), "decoder")]
public abstract record ArchitectureSpec
{
    /// <summary>Number of output classes of the classification head.</summary>
    public required int NumClasses { get; init; }

    /// <summary>Largest classification head accepted (a vocabulary-sized head of a language model included).</summary>
    public const int MaxClasses = 1 << 20;

    /// <summary>Largest image side and channel count accepted: far above any data set this tool reads, and small
    /// enough that every size and FLOP count fits 64 bits (an image size of 2^31 − 1 printed negative FLOPs).</summary>
    public const int MaxImageSize = 8192, MaxInputChannels = 4096;

    /// <summary>The thesis's architecture string, e.g. <c>VGG-1-2-2</c> (table 3-19).</summary>
    [JsonIgnore]
    public abstract string ArchString { get; }

    /// <summary>Checks the spec's internal consistency; throws <see cref="InvalidSpecException"/>.</summary>
    public abstract void Validate();

    /// <summary>The spec as JSON, written by its family (<see cref="IModelFamily.SpecToJson"/>).</summary>
    public string ToJson() => ModelFamilies.For(this).SpecToJson(this);

    /// <summary>JSON of the families declared on this record (<c>JsonDerivedType</c>), <c>kind</c> first.</summary>
    internal static string ToDeclaredJson(ArchitectureSpec spec) =>
        JsonSerializer.Serialize(spec, ModelJson.Default.ArchitectureSpec);

    /// <summary>Reads a spec of a family declared on this record (<c>JsonDerivedType</c>).</summary>
    internal static ArchitectureSpec? FromDeclaredJson(string json) =>
        JsonSerializer.Deserialize(json, ModelJson.Default.ArchitectureSpec);

    /// <summary>Parses and validates a spec; malformed JSON or an unknown kind is an <see cref="InvalidSpecException"/>.</summary>
    public static ArchitectureSpec FromJson(string json, string source = "spec")
    {
        var family = CheckKind(json, source);
        ArchitectureSpec? spec;
        try
        {
            spec = family.SpecFromJson(json);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException
                                      or ArgumentException)
        {
            throw new InvalidSpecException($"{source}: not a valid architecture spec: {OneLine(e.Message)}");
        }
        if (spec is null) throw new InvalidSpecException($"{source}: architecture spec is null");
        spec.Validate();
        return spec;
    }

    /// <summary>The kinds a spec may declare: those of the registered families.</summary>
    public static IReadOnlyList<string> Kinds => ModelFamilies.All.Select(f => f.Kind).ToList();

    private static IModelFamily CheckKind(string json, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidSpecException($"{source}: an architecture spec must be a JSON object");
            if (!doc.RootElement.TryGetProperty("kind", out var kind) || kind.ValueKind != JsonValueKind.String)
                throw new InvalidSpecException($"{source}: architecture spec needs a \"kind\" ({string.Join(", ", Kinds)})");
            return ModelFamilies.ForKind(kind.GetString()!) ?? throw new InvalidSpecException(
                $"{source}: unknown model kind '{kind.GetString()}' (expected {string.Join(", ", Kinds)})");
        }
        catch (JsonException e)
        {
            throw new InvalidSpecException($"{source}: not valid JSON: {OneLine(e.Message)}");
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Source-generated JSON for specs (camelCase, enums as strings).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true, WriteIndented = false, AllowTrailingCommas = false,
    RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(ArchitectureSpec))]
[JsonSerializable(typeof(Cnn.CnnSpec))]
[JsonSerializable(typeof(Transformer.TransformerSpec))]
[JsonSerializable(typeof(Decoder.DecoderSpec))]
internal partial class ModelJson : JsonSerializerContext;
