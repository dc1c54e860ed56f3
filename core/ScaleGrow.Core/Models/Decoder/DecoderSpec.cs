using System.Text.Json.Serialization;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Transformer;

namespace ScaleGrow.Models.Decoder;

/// <summary>
/// Rotary-frequency scaling of Llama 3.1/3.2 (Hugging Face <c>rope_scaling</c> with <c>rope_type: "llama3"</c>): low
/// frequencies are divided by <see cref="Factor"/>, high ones kept, the band between interpolated smoothly.
/// </summary>
public sealed record RopeScaling
{
    public string RopeType { get; set; } = "llama3";
    public required double Factor { get; init; }
    public double LowFreqFactor { get; set; } = 1;
    public double HighFreqFactor { get; set; } = 4;
    public int OriginalMaxPositions { get; set; } = 8192;
}

/// <summary>
/// A Llama-architecture decoder-only language model (issue 8): token embedding, pre-norm layers of RMSNorm,
/// grouped-query attention with rotary position embedding (Hugging Face's rotate-half convention) and a causal mask,
/// RMSNorm, SwiGLU MLP; final RMSNorm and a language-model head that is its own matrix or the embedding's (tied).
/// Fields mirror Hugging Face's <c>LlamaConfig</c> (<see cref="HuggingFaceLlama"/> maps them). The head's classes are
/// the vocabulary: <see cref="ArchitectureSpec.NumClasses"/> must equal <see cref="VocabSize"/>.
/// </summary>
public sealed record DecoderSpec : ArchitectureSpec, ILayeredSpec
{
    public required int VocabSize { get; init; }
    public required int Hidden { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int Intermediate { get; init; }
    public double RmsNormEps { get; set; } = 1e-5;
    public double RopeTheta { get; set; } = 10000;

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RopeScaling? RopeScaling { get; init; }

    public int MaxPositions { get; set; } = 2048;
    public bool TieEmbeddings { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? BosTokenId { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? EosTokenId { get; init; }

    public required IReadOnlyList<TransformerLayerSpec> Layers { get; init; }
    public int NextId { get; init; }

    [JsonIgnore] public int Width => Hidden;

    [JsonIgnore] public override string ArchString => $"Llama-D{Layers.Count}W{Hidden}";

    [JsonIgnore]
    public IReadOnlyList<ProjectionShape> LayerProjections =>
    [
        new("q", Hidden, Heads * HeadDim, true), new("k", Hidden, KvHeads * HeadDim, true),
        new("v", Hidden, KvHeads * HeadDim, true), new("o", Heads * HeadDim, Hidden, true),
        new("gate", Hidden, Intermediate, false), new("up", Hidden, Intermediate, false),
        new("down", Intermediate, Hidden, false),
    ];

    ArchitectureSpec ILayeredSpec.WithLayers(IReadOnlyList<TransformerLayerSpec> layers, int nextId) =>
        this with { Layers = layers, NextId = nextId };

    public override void Validate()
    {
        const string where = "decoder spec";
        void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException($"{where}: {message}");
        }
        Check(VocabSize is >= 2 and <= 1_048_576, $"vocabSize must be in 2..1048576, got {VocabSize}");
        Check(NumClasses == VocabSize, $"numClasses ({NumClasses}) must equal vocabSize ({VocabSize})");
        Check(Hidden is >= 1 and <= 65536, $"hidden must be in 1..65536, got {Hidden}");
        Check(Heads is >= 1 and <= 1024, $"heads must be in 1..1024, got {Heads}");
        Check(KvHeads >= 1 && KvHeads <= Heads && Heads % KvHeads == 0,
            $"kvHeads must divide heads ({Heads}), got {KvHeads}");
        Check(HeadDim >= 2 && HeadDim % 2 == 0 && HeadDim <= 1024,
            $"headDim must be even and in 2..1024 (rotary embedding rotates pairs), got {HeadDim}");
        Check(Intermediate is >= 1 and <= 262144, $"intermediate must be in 1..262144, got {Intermediate}");
        Check(RmsNormEps > 0 && RmsNormEps < 1, $"rmsNormEps must be in (0, 1), got {RmsNormEps}");
        Check(RopeTheta > 1 && double.IsFinite(RopeTheta), $"ropeTheta must be above 1, got {RopeTheta}");
        Check(MaxPositions is >= 2 and <= 1_048_576, $"maxPositions must be in 2..1048576, got {MaxPositions}");
        Check(BosTokenId is null || (BosTokenId >= 0 && BosTokenId < VocabSize), "bosTokenId must be a token id");
        Check(EosTokenId is null || (EosTokenId >= 0 && EosTokenId < VocabSize), "eosTokenId must be a token id");
        if (RopeScaling is { } s)
        {
            Check(s.RopeType == "llama3", $"ropeScaling.ropeType '{s.RopeType}' is not supported (only llama3)");
            Check(s.Factor >= 1 && s.LowFreqFactor > 0 && s.HighFreqFactor > s.LowFreqFactor &&
                  s.OriginalMaxPositions >= 1,
                "ropeScaling needs factor ≥ 1, 0 < lowFreqFactor < highFreqFactor and originalMaxPositions ≥ 1");
        }
        if (Layers is null || Layers.Count > 1024 || Layers.Any(l => l is null))
            throw new InvalidSpecException($"{where}: layers must hold at most 1024 layers");
        Check(Layers.Select(l => l.Id).Distinct().Count() == Layers.Count, "layer ids must be unique");
        Check(Layers.Count == 0 || NextId > Layers.Max(l => l.Id), $"nextId {NextId} must exceed every layer id");
        LayerInstances.Validate(Layers, Width, where);
    }

    /// <summary>A decoder with <paramref name="layers"/> plain layers (ids 0…), head dimension hidden/heads.</summary>
    public static DecoderSpec Create(int vocabSize, int hidden, int layers, int heads, int kvHeads, int intermediate,
        bool tieEmbeddings = false, int maxPositions = 2048) => new()
        {
            NumClasses = vocabSize, VocabSize = vocabSize, Hidden = hidden, Heads = heads, KvHeads = kvHeads,
            HeadDim = hidden / heads, Intermediate = intermediate, TieEmbeddings = tieEmbeddings,
            MaxPositions = maxPositions,
            Layers = Enumerable.Range(0, layers).Select(i => new TransformerLayerSpec { Id = i }).ToArray(),
            NextId = layers,
        };
}
