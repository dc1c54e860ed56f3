using System.Runtime.CompilerServices;
using Onnx;
using ScaleGrow.Export;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Families;

/// <summary>
/// The Transformer encoder family (thesis 3.4): ViT on images and BERT-style on text, one
/// <see cref="TransformerModel"/> chosen by <see cref="TransformerSpec.Modality"/>. It grows in depth (new layers)
/// and width (wider heads or more of them); there is nothing to fuse.
/// </summary>
public sealed class TransformerModelFamily : IModelFamily, IGrowableFamily, IOnnxExportableFamily
{
#pragma warning disable CA2255 // the registration line of the family, run once when the assembly loads
    [ModuleInitializer]
    internal static void Register() => ModelFamilies.Register(new TransformerModelFamily());
#pragma warning restore CA2255

    public string Kind => "transformer";
    public Type SpecType => typeof(TransformerSpec);
    public Type ModelType => typeof(TransformerModel);
    public bool IsLanguageModel => false;

    public string SpecToJson(ArchitectureSpec spec) => ArchitectureSpec.ToDeclaredJson(Spec(spec));

    public ArchitectureSpec? SpecFromJson(string json) => ArchitectureSpec.FromDeclaredJson(json);

    public IScaleGrowModel Build(ArchitectureSpec spec) => new TransformerModel(Spec(spec));

    public ModelStats CountStats(ArchitectureSpec spec) => TransformerStatsCounter.Count(Spec(spec));

    public long ActivationsPerSample(ArchitectureSpec spec)
    {
        var t = Spec(spec);
        return checked(t.Tokens * (long)(t.Layers.Count + 1) * (8L * t.Width + 2L * t.MlpHidden) +
                       t.Layers.Count * (long)t.Heads * t.Tokens * t.Tokens);
    }

    public long[] InputShape(ArchitectureSpec spec)
    {
        var t = Spec(spec);
        return t.Modality == TransformerModality.Image ? [t.InputChannels, t.ImageSize, t.ImageSize] : [t.MaxLength];
    }

    public bool ReadsText(ArchitectureSpec spec) => Spec(spec).Modality == TransformerModality.Text;

    /// <summary>When every attention head got wider (table 3-12's ablation), each head's rows move to the head's new
    /// block: head h's d old rows go to rows h·d' … h·d' + d of the grown tensor.</summary>
    public bool TryPlaceGrown(Tensor target, Tensor source, string name, ArchitectureSpec oldSpec,
        ArchitectureSpec newSpec)
    {
        if (newSpec is not TransformerSpec b || Spec(oldSpec) is not { } a || a.HeadDim == b.HeadDim ||
            HeadAxis(name) is not { } axis)
            return false;
        using var scope = torch.NewDisposeScope();
        var index = torch.arange(a.Heads * a.HeadDim, dtype: ScalarType.Int64, device: source.device);
        var mapped = index.div(a.HeadDim, RoundingMode.floor) * b.HeadDim + index % a.HeadDim;
        var shape = (long[])source.shape.Clone();
        shape[axis] = target.shape[axis];
        var expanded = torch.zeros(shape, dtype: source.dtype, device: source.device);
        expanded.index_copy_(axis, mapped, source);
        target[expanded.shape.Select(d => TensorIndex.Slice(0, d)).ToArray()] = expanded;
        return true;
    }

    /// <summary>The head-structured axis of an attention tensor: Q/K/V rows (and biases), O columns.</summary>
    private static int? HeadAxis(string name)
    {
        if (name.EndsWith(".attn.o.weight", StringComparison.Ordinal)) return 1;
        foreach (var p in new[] { ".attn.q.", ".attn.k.", ".attn.v." })
            if (name.Contains(p, StringComparison.Ordinal)) return 0;
        return null;
    }

    public ImportanceReport ScoreImportance(IScaleGrowModel model) => ImportanceScorer.Score(Model(model));

    public GrowthDecision Decide(ArchitectureSpec spec, ImportanceReport scores, GrowthProgress progress,
        GrowthOptions options, long runSeed) =>
        GrowthPlanner.DecideTransformer(Spec(spec), scores, progress, options, runSeed);

    public void ValidateTarget(string target, ArchitectureSpec spec) =>
        GrowthPlanner.ParseTransformerTarget(target, Spec(spec));

    public bool NeedsCalibration(ArchitectureSpec grownSpec, InitOptions init, GrowthKind kind) => false;

    public void PreserveFunction(IScaleGrowModel grown, ArchitectureSpec oldSpec,
        IReadOnlyDictionary<string, Tensor> oldState, Tensor? calibration) =>
        FunctionPreservingWidth.Apply(Model(grown), Spec(oldSpec), oldState);

    public bool HasBranchesToMerge(IScaleGrowModel model) => false;

    public (IScaleGrowModel Model, IReadOnlyList<string> Rewritten) MergeBranches(IScaleGrowModel model,
        Tensor calibration) => throw new InvalidSpecException($"{model.Spec.ArchString} has no branches to merge");

    OnnxGraphOutput IOnnxExportableFamily.EmitOnnx(OnnxGraphBuilder builder, IScaleGrowModel model, string inputName,
        object batch)
    {
        var t = Spec(model.Spec);
        if (t.Modality == TransformerModality.Image)
            builder.Input(inputName, TensorProto.Types.DataType.Float, batch, t.InputChannels, t.ImageSize,
                t.ImageSize);
        else
            builder.Input(inputName, TensorProto.Types.DataType.Int64, batch, "sequence");
        string logits = TransformerOnnxGraph.Emit(builder, t, inputName);
        return new OnnxGraphOutput(InputShape(t), logits, [batch, t.NumClasses]);
    }

    private static TransformerSpec Spec(ArchitectureSpec spec) => spec as TransformerSpec ?? throw WrongKind(spec);

    private static TransformerModel Model(IScaleGrowModel model) =>
        model as TransformerModel ?? throw WrongKind(model.Spec);

    private static InvalidSpecException WrongKind(ArchitectureSpec spec) =>
        new($"the Transformer family was asked about a {spec.GetType().Name}");
}
