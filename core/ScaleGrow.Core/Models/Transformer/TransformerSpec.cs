using System.Text.Json.Serialization;

namespace ScaleGrow.Models.Transformer;

public enum TransformerModality
{
    /// <summary>Vision Transformer: patch embedding, class token, learned positions.</summary>
    [JsonStringEnumMemberName("image")] Image,
    /// <summary>BERT-style encoder: token and position embeddings, [CLS] pooling.</summary>
    [JsonStringEnumMemberName("text")] Text,
}

/// <summary>
/// A pre-norm Transformer encoder for classification (thesis 3.4: ViT and BERT share the trunk). Width is
/// heads × head dimension and stays isotropic while growing: width growth adds a head everywhere (or widens every
/// head, the ablation of table 3-12); depth growth inserts a layer. Layers carry creation ids so parameter names
/// (<c>layers.L3.attn.q.weight</c>) never change.
/// </summary>
public sealed record TransformerSpec : ArchitectureSpec, ScaleGrow.Models.Adapters.ILayeredSpec
{
    public required TransformerModality Modality { get; init; }
    public required int Heads { get; init; }
    public required int HeadDim { get; init; }
    public double MlpRatio { get; set; } = 4;
    public required IReadOnlyList<TransformerLayerSpec> Layers { get; init; }
    public int NextId { get; init; }

    // Image
    public int InputChannels { get; set; } = 1;
    public int ImageSize { get; set; } = 28;
    public int PatchSize { get; set; } = 4;

    // Text
    public int VocabSize { get; init; }
    public int MaxLength { get; set; } = 128;
    public int PadTokenId { get; init; }

    [JsonIgnore] public int Width => Heads * HeadDim;
    [JsonIgnore] public int MlpHidden => (int)Math.Round(MlpRatio * Width);
    [JsonIgnore]
    public int Tokens => Modality == TransformerModality.Image
        ? (ImageSize / PatchSize) * (ImageSize / PatchSize) + 1
        : MaxLength;

    [JsonIgnore]
    public override string ArchString =>
        $"{(Modality == TransformerModality.Image ? "ViT" : "BERT")}-D{Layers.Count}W{Width}";

    public override void Validate()
    {
        string where = "transformer spec";
        void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException($"{where}: {message}");
        }
        Check(NumClasses is >= 2 and <= MaxClasses, $"numClasses must be in 2..{MaxClasses}, got {NumClasses}");
        Check(Heads is >= 1 and <= 256, $"heads must be in 1..256, got {Heads}");
        Check(HeadDim is >= 1 and <= 1024, $"headDim must be in 1..1024, got {HeadDim}");
        Check(MlpRatio is > 0 and <= 16, $"mlpRatio must be in (0, 16], got {MlpRatio}");
        if (Layers is null || Layers.Count > 256 || Layers.Any(l => l is null))
            throw new InvalidSpecException($"{where}: layers must hold at most 256 layers");
        Check(Layers.Select(l => l.Id).Distinct().Count() == Layers.Count, "layer ids must be unique");
        Check(Layers.Count == 0 || NextId > Layers.Max(l => l.Id), $"nextId {NextId} must exceed every layer id");
        ScaleGrow.Models.Adapters.LayerInstances.Validate(Layers, Width, where);
        if (Modality == TransformerModality.Image)
        {
            Check(InputChannels is >= 1 and <= MaxInputChannels,
                $"inputChannels must be in 1..{MaxInputChannels}, got {InputChannels}");
            Check(ImageSize is >= 1 and <= MaxImageSize, $"imageSize must be in 1..{MaxImageSize}, got {ImageSize}");
            Check(PatchSize >= 1 && ImageSize % PatchSize == 0,
                $"imageSize {ImageSize} must be a multiple of patchSize {PatchSize}");
        }
        else
        {
            Check(VocabSize is >= 2 and <= 1_000_000, $"vocabSize must be in 2..1000000, got {VocabSize}");
            Check(MaxLength is >= 2 and <= 65536, $"maxLength must be in 2..65536, got {MaxLength}");
            Check(PadTokenId >= 0 && PadTokenId < VocabSize, "padTokenId must be a token id");
        }
    }

    ArchitectureSpec ScaleGrow.Models.Adapters.ILayeredSpec.WithLayers(IReadOnlyList<TransformerLayerSpec> layers, int nextId) =>
        this with { Layers = layers, NextId = nextId };

    IReadOnlyList<ScaleGrow.Models.Adapters.ProjectionShape> ScaleGrow.Models.Adapters.ILayeredSpec.LayerProjections => TransformerLayer.Projections(this);

    /// <summary>The seed of thesis 3.4.1: one layer, two heads.</summary>
    public static TransformerSpec Seed(TransformerModality modality, int numClasses, int headDim, int layers = 1,
        int heads = 2) => new()
        {
            Modality = modality, NumClasses = numClasses, Heads = heads, HeadDim = headDim,
            Layers = Enumerable.Range(0, layers).Select(i => new TransformerLayerSpec { Id = i }).ToArray(),
            NextId = layers,
        };
}

/// <summary>
/// One layer instance of a Transformer stack (encoder or decoder). <see cref="Id"/> is the creation id that names its
/// parameters (<c>layers.L{id}.…</c>). ScaleNet's weight sharing: an instance with <see cref="SharesWith"/> runs the
/// weights of that layer (the very same tensors) with its own <see cref="Adapter"/>.
/// </summary>
public sealed record TransformerLayerSpec
{
    public required int Id { get; init; }

    /// <summary>The id of the layer whose weights this instance uses; null when it owns its weights.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? SharesWith { get; init; }

    /// <summary>The instance's own adjustment parameters (adapters, LoRA, own norms); null for none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ScaleGrow.Models.Adapters.AdapterSpec? Adapter { get; init; }
}
