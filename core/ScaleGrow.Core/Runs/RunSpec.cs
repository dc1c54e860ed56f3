using System.Text.Json;
using System.Text.Json.Serialization;
using ScaleGrow.Data;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

/// <summary>
/// A run as a user submits it (<c>--spec FILE</c>, <c>POST /api/runs</c>, or a preset): what to train on, which
/// model to start from, how to train and how to grow. Validated at the boundary, before any work starts.
/// </summary>
public sealed record RunSpec
{
    public RunKind Kind { get; set; } = RunKind.Grow;

    /// <summary>The preset this spec came from, if any (informational).</summary>
    public string? Preset { get; init; }

    public long Seed { get; set; } = 1;
    public DatasetSpec Data { get; set; } = new();

    /// <summary>Text data instead of images (BERT-style runs): fortunes topics or a label&lt;TAB&gt;text file.</summary>
    public ScaleGrow.Data.Text.TextDatasetSpec? TextData { get; set; }
    public ModelRequest Model { get; set; } = new();
    public TrainingOptions Training { get; set; } = new();

    /// <summary>Epochs of a fixed-size training run (<see cref="RunKind.Train"/>).</summary>
    public int Epochs { get; set; } = 10;

    public GrowthOptions Growth { get; set; } = new();

    /// <summary>Upper bound on one TrainInterval step (seconds); longer intervals are split and checkpointed.</summary>
    public double MaxIntervalSeconds { get; set; } = 600;

    /// <summary>Scale runs (<see cref="RunKind.Scale"/>): where the pretrained model comes from and how to expand it.
    /// </summary>
    public ScaleRunOptions? Scale { get; set; }

    /// <summary>Quantize the fused final model (thesis chapter 4) with these options; null: no quantization.</summary>
    public ScaleGrow.Quantization.QuantizationOptions? Quantization { get; set; }

    /// <summary>Export the final models (fused, and quantized when asked) as ONNX; null: no export.</summary>
    public ExportSpec? Export { get; set; }

    /// <summary>Measure CPU latency of the final model (batch 1 and 64).</summary>
    public bool MeasureLatency { get; set; } = true;

    /// <summary>How many step checkpoints the run keeps (<see cref="RetentionOptions"/>).</summary>
    public RetentionOptions Retention { get; set; } = new();

    /// <summary>
    /// Where every step computes: <c>auto</c> (CUDA device 0 when TorchSharp reports one, else the CPU), <c>cpu</c>,
    /// <c>cuda</c> or <c>cuda:N</c>. Resolved by each step on the machine that runs it (<see cref="ComputeDevice"/>),
    /// so a run can move between GPU and CPU replicas; checkpoints are device-free.
    /// </summary>
    public string Device { get; set; } = "auto";

    public void Validate()
    {
        if (Kind == RunKind.Train && Epochs is < 1 or > 10000)
            throw new InvalidSpecException($"run: epochs must be in 1..10000, got {Epochs}");
        if (MaxIntervalSeconds is < 1 or > 86400)
            throw new InvalidSpecException($"run: maxIntervalSeconds must be in 1..86400, got {MaxIntervalSeconds}");
        ComputeDevice.ValidateChoice(Device);
        if (Training.Precision != TrainingPrecision.Fp32 && Device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase))
            throw new InvalidSpecException(
                $"training: precision '{Training.Precision.ToString().ToLowerInvariant()}' needs a CUDA device, and " +
                "device is 'cpu'; use precision fp32 on the CPU (with device 'auto' a CPU step falls back to fp32)");
        Training.Validate();
        Growth.Validate();
        Data.Validate(); // every host, the HTTP API included (it used to skip the data section)
        Retention.Validate();
        Quantization?.Validate();
        Export?.Validate();
        if (Kind == RunKind.Scale)
        {
            if (Scale is null) throw new InvalidSpecException("run: kind scale needs a scale section");
            Scale.Validate();
            if (Epochs is < 1 or > 10000)
                throw new InvalidSpecException($"run: epochs (after the expansion) must be in 1..10000, got {Epochs}");
        }
        Model.Validate();
        if (TextData is null) Model.ValidateMemory(Data.Name, Training.BatchSize);
        string? family = Model.Architecture is null && Model.Baseline is null
            ? Model.Family?.Trim().ToLowerInvariant()
            : null;
        bool decoder = family is "decoder" ||
                       Model.Architecture is { } given && ModelFamilies.For(given).IsLanguageModel;
        if (TextData is not null)
        {
            TextData.Validate();
            if (TextData.IsLanguageModel && !decoder)
                throw new InvalidSpecException(
                    $"run: language-model text data needs a decoder (family decoder), not '{family ?? Model.Architecture?.ArchString ?? Model.Baseline}'");
            if (!TextData.IsLanguageModel && family is not null && family != "bert")
                throw new InvalidSpecException($"run: text classification needs a text model (family bert), not '{family}'");
        }
        else if (family is "bert" or "decoder")
        {
            throw new InvalidSpecException(family == "bert"
                ? "run: family bert needs textData (e.g. {\"name\": \"fortunes\"})"
                : "run: family decoder needs language-model textData (e.g. {\"name\": \"fortunes\", \"task\": \"language-model\"})");
        }
        if (decoder && Kind == RunKind.Grow)
            throw new InvalidSpecException("run: decoders are trained (kind train) or scaled (kind scale), not grown");
        if (Kind == RunKind.Grow)
        {
            // Block-level placement and branch merging are CNN rules; the other growable families take layer rules.
            bool transformer = family is "vit" or "bert" ||
                               Model.Architecture is { } grown && !ModelFamilies.For(grown).HasMultiBranchBlocks;
            var placement = Growth.DepthPlacement;
            if (transformer && placement == DepthPlacement.GreedyExcludeLast)
                throw new InvalidSpecException(
                    "growth: depthPlacement 'greedy-exclude-last' applies to CNN blocks; Transformers take greedy, first, last or random");
            if (transformer && Growth.FineTuneBranches == FineTuneBranches.Merge)
                throw new InvalidSpecException(
                    "growth: fineTuneBranches 'merge' applies to CNN branches; Transformers take 'keep'");
            if (!transformer && placement is DepthPlacement.First or DepthPlacement.Last)
                throw new InvalidSpecException(
                    $"growth: depthPlacement '{(placement == DepthPlacement.First ? "first" : "last")}' applies to Transformers; CNNs take greedy, greedy-exclude-last, sequential or random");
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, RunJson.Default.RunSpec);

    public static RunSpec FromJson(string json, string source) =>
        SpecJson.Parse(json, RunJson.Default.RunSpec, source, "not a valid run spec", "run spec is null",
            spec => spec.Validate());

    /// <summary>
    /// A request body: a full run spec, or a preset by name with an optional seed (<c>{"preset": "quick",
    /// "seed": 2}</c>). Anything else next to a preset name is a full spec (the name is then only a label).
    /// </summary>
    public static RunSpec FromRequestJson(string json, string source)
    {
        System.Text.Json.Nodes.JsonObject? o = null;
        try
        {
            o = System.Text.Json.Nodes.JsonNode.Parse(json, documentOptions: new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
            }) as System.Text.Json.Nodes.JsonObject;
        }
        catch (JsonException)
        {
            // FromJson below gives the one-line error.
        }
        if (o is not null && o.ContainsKey("preset") && o.All(kv => kv.Key is "preset" or "seed"))
        {
            string name = o["preset"]?.GetValueKind() == JsonValueKind.String
                ? (string)o["preset"]!
                : throw new InvalidSpecException($"{source}: preset must be a string");
            var spec = Presets.Get(name).Spec;
            if (o["seed"] is { } seed)
                spec = spec with
                {
                    Seed = seed.GetValueKind() == JsonValueKind.Number && seed.AsValue().TryGetValue(out long s)
                        ? s : throw new InvalidSpecException($"{source}: seed must be an integer"),
                };
            spec.Validate();
            return spec;
        }
        return FromJson(json, source);
    }

    /// <summary>The settings the orchestrator decides with.</summary>
    public RunSettings Settings() => new()
    {
        Kind = Kind, Seed = Seed, Training = Training, Epochs = Epochs,
        Growth = Growth.HeadDimStep == 0 && Model.Heads > 0
            ? Growth with { HeadDimStep = Math.Max(1, Model.HeadDim / Model.Heads) }
            : Growth,
        Quantize = Quantization is not null,
        Export = Export is not null,
        PretrainEpochs = Kind == RunKind.Scale ? Scale?.PretrainEpochs ?? 0 : 0,
        MaxIntervalSeconds = MaxIntervalSeconds,
    };
}

/// <summary>
/// Which model a run starts from: an explicit architecture spec, a named fixed baseline (<c>vgg11</c>, …), or for
/// growth the seed of a family (CNN: <c>vgg</c>, <c>resnet</c>, <c>bottleneck</c>, <c>mbv3</c>; Transformer:
/// <c>vit</c>, <c>bert</c>; for train and scale runs also <c>decoder</c>, a Llama-style language model of
/// <see cref="Layers"/> layers, width <see cref="Heads"/> × <see cref="HeadDim"/>, SwiGLU width
/// <see cref="MlpRatio"/> × width). Input channels, image size and classes come from the data.
/// </summary>
public sealed record ModelRequest
{
    public string? Family { get; set; } = "vgg";
    public string? Baseline { get; init; }
    public ArchitectureSpec? Architecture { get; init; }

    /// <summary>CNNs: 2 or 3 down-sampling layers (table 3-1).</summary>
    public int Downsamplings { get; set; } = 2;

    public int[]? StageWidths { get; init; }

    /// <summary>CNNs: fixed layers per block (a fixed-size model of the family instead of the empty seed).</summary>
    public int[]? LayersPerBlock { get; init; }

    // Transformers (thesis 3.4.1: seed 1 layer, 2 heads).
    public int Heads { get; set; } = 2;
    public int HeadDim { get; set; } = 32;
    public int Layers { get; set; } = 1;
    public int PatchSize { get; set; } = 4;
    public double MlpRatio { get; set; } = 4;

    /// <summary>Decoders: key/value heads of grouped-query attention (0: as many as <see cref="Heads"/>).</summary>
    public int KvHeads { get; set; }

    /// <summary>Decoders: the output projection is the token embedding.</summary>
    public bool TieEmbeddings { get; set; } = true;

    public void Validate()
    {
        int given = (Architecture is null ? 0 : 1) + (Baseline is null ? 0 : 1);
        if (given > 1) throw new InvalidSpecException("model: give at most one of architecture and baseline");
        if (given == 0 && string.IsNullOrWhiteSpace(Family))
            throw new InvalidSpecException("model: give a family, a baseline or an architecture");
        if (KvHeads < 0 || (KvHeads > 0 && Heads % KvHeads != 0))
            throw new InvalidSpecException($"model: kvHeads must divide heads ({Heads}), got {KvHeads}");
        if (Downsamplings is not (2 or 3))
            throw new InvalidSpecException($"model: downsamplings must be 2 or 3, got {Downsamplings}");
        Architecture?.Validate();
        if (given == 0) ValidateSeedSize();
    }

    // Bounds far above any model this tool trains, checked before a run is registered: a width of 1e9 or 100,000
    // heads used to pass here and fail (or exhaust memory) inside InitializeRun, leaving a broken run behind (issue 16).
    private const int MaxWidth = 8192, MaxLayersPerBlock = 64, MaxHeads = 256, MaxHeadDim = 1024, MaxLayers = 256;

    private void ValidateSeedSize()
    {
        string family = Family!.Trim().ToLowerInvariant();
        if (family is "vit" or "bert" or "decoder")
        {
            if (Heads is < 1 or > MaxHeads) throw new InvalidSpecException($"model: heads must be in 1..{MaxHeads}, got {Heads}");
            if (HeadDim is < 1 or > MaxHeadDim)
                throw new InvalidSpecException($"model: headDim must be in 1..{MaxHeadDim}, got {HeadDim}");
            if (Layers is < 1 or > MaxLayers) throw new InvalidSpecException($"model: layers must be in 1..{MaxLayers}, got {Layers}");
            if (PatchSize is < 1 or > 1024) throw new InvalidSpecException($"model: patchSize must be in 1..1024, got {PatchSize}");
            if (!(MlpRatio > 0 && MlpRatio <= 64)) throw new InvalidSpecException($"model: mlpRatio must be in (0, 64], got {MlpRatio}");
            return;
        }
        var cnnFamily = CnnSpec.ParseFamily(family); // one line naming the unknown family
        if (StageWidths is { } widths)
        {
            if (widths.Length is not (3 or 4))
                throw new InvalidSpecException($"model: stageWidths needs 3 or 4 widths (2 or 3 down-samplings), got {widths.Length}");
            foreach (var w in widths)
                if (w is < 1 or > MaxWidth)
                    throw new InvalidSpecException($"model: stage widths must be in 1..{MaxWidth}, got {w}");
        }
        if (LayersPerBlock is { } layers)
        {
            int stages = StageWidths?.Length ?? CnnSpecs.DefaultWidths(cnnFamily, Downsamplings).Length;
            if (layers.Length != stages)
                throw new InvalidSpecException($"model: layersPerBlock has {layers.Length} entries for {stages} stages");
            foreach (var n in layers)
                if (n is < 0 or > MaxLayersPerBlock)
                    throw new InvalidSpecException($"model: layers per block must be in 0..{MaxLayersPerBlock}, got {n}");
        }
    }

    /// <summary>
    /// Refuses a starting model whose parameters, or whose activations for one training batch, exceed the model memory
    /// limit (<see cref="ModelMemory"/>), before the run is registered: the model is built as a spec (no tensor) for
    /// the image shape of the named dataset. An explicit architecture is checked as given; a seed as it starts (growth
    /// is bounded by the growth options, checked with them).
    /// </summary>
    public void ValidateMemory(string dataset, int batchSize)
    {
        var (channels, imageSize, classes) = dataset switch
        {
            DatasetSpec.Cifar10 => (3, 32, 10),
            DatasetSpec.Cifar100 => (3, 32, 100),
            _ => (1, 28, 10),
        };
        string family = Family?.Trim().ToLowerInvariant() ?? "";
        // Text models are sized by their data (vocabulary, sequence length), known only once it is read.
        if (Architecture is null && Baseline is null && family is "bert" or "decoder") return;
        var spec = Architecture ?? Build(channels, imageSize, classes);
        ModelMemory.EnsureWithinLimit(spec, batchSize, "model");
    }

    /// <summary>The run's starting architecture for data with the given shape and classes.</summary>
    public ArchitectureSpec Build(int channels, int imageSize, int classes, int vocabSize = 0, int maxLength = 0)
    {
        if (Architecture is not null)
        {
            if (Architecture.NumClasses != classes)
                throw new InvalidSpecException(
                    $"model: architecture has {Architecture.NumClasses} classes, the data has {classes}");
            return Architecture;
        }
        if (Baseline is not null) return CnnSpecs.Baseline(Baseline, classes, channels, imageSize);
        string family = Family!.Trim().ToLowerInvariant();
        if (family is "decoder")
        {
            if (vocabSize <= 0) throw new InvalidSpecException("model: family decoder needs language-model text data");
            int hidden = Heads * HeadDim;
            var spec = Models.Decoder.DecoderSpec.Create(vocabSize, hidden, Layers, Heads,
                KvHeads > 0 ? KvHeads : Heads, (int)Math.Round(MlpRatio * hidden), TieEmbeddings,
                maxLength > 0 ? maxLength : 128);
            spec.Validate();
            return spec;
        }
        if (family is "vit" or "bert")
        {
            var modality = family == "vit" ? TransformerModality.Image : TransformerModality.Text;
            var spec = TransformerSpec.Seed(modality, classes, HeadDim, Layers, Heads) with
            {
                MlpRatio = MlpRatio,
                InputChannels = channels,
                ImageSize = imageSize,
                PatchSize = PatchSize,
                VocabSize = vocabSize,
                MaxLength = maxLength > 0 ? maxLength : 128,
            };
            spec.Validate();
            return spec;
        }
        var cnnFamily = CnnSpec.ParseFamily(family);
        var widths = StageWidths ?? CnnSpecs.DefaultWidths(cnnFamily, Downsamplings);
        return LayersPerBlock is { } layers
            ? CnnSpecs.Fixed(cnnFamily, classes, layers, channels, imageSize, widths)
            : CnnSpecs.Seed(cnnFamily, classes, channels, imageSize, widths);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(RunSpec))]
[JsonSerializable(typeof(ScaleGrow.Quantization.QuantizationOptions))]
[JsonSerializable(typeof(ScaleGrow.Data.Text.TextDatasetSpec))]
[JsonSerializable(typeof(ArchitectureSpec))]
internal partial class RunJson : JsonSerializerContext;

/// <summary>
/// A ScaleNet run: the model is trained for <see cref="PretrainEpochs"/> (or read from <see cref="From"/>, a
/// checkpoint in the run's store), expanded deeper with weight-shared layers and per-instance adapters
/// (<see cref="Expansion"/>, docs/scalenet.md), trained for the run's <c>epochs</c>, then fused, evaluated and
/// optionally quantized like any run.
/// </summary>
public sealed record ScaleRunOptions
{
    public int PretrainEpochs { get; set; }

    /// <summary>A model checkpoint in the store to start from instead of pretraining (e.g.
    /// <c>runs/ID/final/model.safetensors</c> of an earlier run).</summary>
    public string? From { get; set; }

    public ScaleGrow.Scaling.ScaleNetOptions Expansion { get; set; } = new();

    public void Validate()
    {
        if (PretrainEpochs is < 0 or > 10000)
            throw new InvalidSpecException($"scale: pretrainEpochs must be in 0..10000, got {PretrainEpochs}");
        if (From is null && PretrainEpochs == 0)
            throw new InvalidSpecException("scale: give pretrainEpochs > 0 or from (a pretrained checkpoint)");
        if (From is not null && PretrainEpochs > 0)
            throw new InvalidSpecException("scale: give pretrainEpochs or from, not both");
        if (From is not null) ScaleGrow.Storage.ArtifactPath.Validate(From);
        if (Expansion.TrainAdaptersOnly && Expansion.Adapter == ScaleGrow.Models.Adapters.AdapterKind.None &&
            !Expansion.OwnNorms)
            throw new InvalidSpecException(
                "scale: trainAdaptersOnly needs per-instance parameters to train: an adapter or ownNorms");
        Expansion.TargetFor(1);
    }
}
