using System.Runtime.CompilerServices;
using Onnx;
using ScaleGrow.Export;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using static TorchSharp.torch;

namespace ScaleGrow.Families;

/// <summary>
/// The CNN family (thesis 3.3): VGG, ResNet, Bottleneck and MobileNetV3 share one model, <see cref="CnnModel"/>,
/// parametrised by the block of <see cref="CnnSpec.Family"/>. Multi-branch units fuse into plain convolutions
/// (structural re-parameterization); a fused checkpoint carries its kernels' overlap maps (thesis 4.2).
/// </summary>
public sealed class CnnModelFamily : IModelFamily, IGrowableFamily, IOnnxExportableFamily
{
#pragma warning disable CA2255 // the registration line of the family, run once when the assembly loads
    [ModuleInitializer]
    internal static void Register() => ModelFamilies.Register(new CnnModelFamily());
#pragma warning restore CA2255

    public string Kind => "cnn";
    public Type SpecType => typeof(CnnSpec);
    public Type ModelType => typeof(CnnModel);
    public bool IsLanguageModel => false;
    public bool HasMultiBranchBlocks => true;

    public string SpecToJson(ArchitectureSpec spec) => ArchitectureSpec.ToDeclaredJson(Spec(spec));

    public ArchitectureSpec? SpecFromJson(string json) => ArchitectureSpec.FromDeclaredJson(json);

    public IScaleGrowModel Build(ArchitectureSpec spec) => new CnnModel(Spec(spec));

    public ModelStats CountStats(ArchitectureSpec spec) => CnnStatsCounter.Count(Spec(spec));

    public long ActivationsPerSample(ArchitectureSpec spec)
    {
        var cnn = Spec(spec);
        checked
        {
            long size = cnn.ImageSize;
            long total = cnn.InputChannels * size * size;
            foreach (var (role, index, layer) in cnn.AllLayers())
            {
                foreach (var g in CnnGeometry.UnitsOf(cnn, role, index))
                {
                    size = (size - 1) / g.Stride + 1;
                    // Each branch's output and its batch norm's, then the activation.
                    long branches = cnn.Fused ? 1 : 2L * layer.Units.Sum(u => u.Branches.Count) / layer.Units.Count;
                    total += (branches + 1) * g.OutChannels * size * size;
                }
            }
            return total + cnn.NumClasses;
        }
    }

    public long[] InputShape(ArchitectureSpec spec)
    {
        var cnn = Spec(spec);
        return [cnn.InputChannels, cnn.ImageSize, cnn.ImageSize];
    }

    public bool ReadsText(ArchitectureSpec spec) => false;

    public bool IsInferenceForm(IScaleGrowModel model) => Spec(model.Spec).Fused;

    public int FusibleUnits(IScaleGrowModel model) =>
        IsInferenceForm(model) ? 0 : Model(model).AllLayers().Sum(l => l.Layer.Units.Count);

    public IScaleGrowModel ToInferenceForm(IScaleGrowModel model) =>
        IsInferenceForm(model) ? model : CnnFusion.Fuse(Model(model));

    public IReadOnlyDictionary<string, int[,]>? OverlapMaps(ArchitectureSpec spec) =>
        Spec(spec) is { Fused: true } fused ? CnnFusion.OverlapMaps(fused) : null;

    public IReadOnlyList<string> BranchLines(ArchitectureSpec spec) =>
        Spec(spec).AllLayers().Select(l => $"{CnnFusion.LayerPath(l.Role, l.Index, l.Layer),-16} " + string.Join("  ",
            l.Layer.Units.Select(u => $"{u.Name}: {string.Join("+", u.Branches.Select(b => b.Kind))}"))).ToList();

    public bool TryPlaceGrown(Tensor target, Tensor source, string name, ArchitectureSpec oldSpec,
        ArchitectureSpec newSpec) => false;

    public ImportanceReport ScoreImportance(IScaleGrowModel model) => ImportanceScorer.Score(Model(model));

    public GrowthDecision Decide(ArchitectureSpec spec, ImportanceReport scores, GrowthProgress progress,
        GrowthOptions options, long runSeed) => GrowthPlanner.DecideCnn(Spec(spec), scores, progress, options, runSeed);

    public void ValidateTarget(string target, ArchitectureSpec spec) => StoppingRules.ParseTarget(target, Spec(spec));

    /// <summary>Only depth growth needs inputs: a new VGG layer's identity init measures its input statistics
    /// (<see cref="FunctionPreservingDepth"/>).</summary>
    public bool NeedsCalibration(ArchitectureSpec grownSpec, InitOptions init, GrowthKind kind) =>
        init.PreserveFunction && kind == GrowthKind.Depth;

    public void PreserveFunction(IScaleGrowModel grown, ArchitectureSpec oldSpec,
        IReadOnlyDictionary<string, Tensor> oldState, Tensor? calibration) =>
        FunctionPreservingDepth.Apply(Model(grown), Spec(oldSpec), calibration);

    public bool HasBranchesToMerge(IScaleGrowModel model) => CnnBranchMerge.HasBranches(Spec(model.Spec));

    public (IScaleGrowModel Model, IReadOnlyList<string> Rewritten) MergeBranches(IScaleGrowModel model,
        Tensor calibration) => CnnBranchMerge.Merge(Model(model), calibration);

    OnnxGraphOutput IOnnxExportableFamily.EmitOnnx(OnnxGraphBuilder builder, IScaleGrowModel model, string inputName,
        object batch)
    {
        var cnn = Spec(model.Spec);
        builder.Input(inputName, TensorProto.Types.DataType.Float, batch, cnn.InputChannels, cnn.ImageSize,
            cnn.ImageSize);
        string logits = CnnOnnxGraph.Emit(builder, Model(model), inputName);
        return new OnnxGraphOutput(InputShape(cnn), logits, [batch, cnn.NumClasses]);
    }

    private static CnnSpec Spec(ArchitectureSpec spec) => spec as CnnSpec ?? throw WrongKind(spec);

    private static CnnModel Model(IScaleGrowModel model) => model as CnnModel ?? throw WrongKind(model.Spec);

    private static InvalidSpecException WrongKind(ArchitectureSpec spec) =>
        new($"the CNN family was asked about a {spec.GetType().Name}");
}
