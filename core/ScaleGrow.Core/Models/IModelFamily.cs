using static TorchSharp.torch;

namespace ScaleGrow.Models;

/// <summary>
/// Everything that differs between model families at the level of a spec and its module: building, counting,
/// inputs, the inference form and what a checkpoint carries. One implementation per family, registered once in
/// <see cref="ModelFamilies"/> (timm's model registry); code outside the family asks the registry instead of switching
/// on spec or model types, so a new family is one file and one registration line. Growth and ONNX export add their
/// own parts in <c>Growth.IGrowableFamily</c> and <c>Export.IOnnxExportableFamily</c>, implemented by the same class.
/// </summary>
public interface IModelFamily
{
    /// <summary>The spec's JSON discriminator (<c>kind</c>), unique in the registry.</summary>
    string Kind { get; }

    /// <summary>The concrete spec type of the family; the registry maps it back to the family.</summary>
    Type SpecType { get; }

    /// <summary>The concrete model type <see cref="Build"/> returns.</summary>
    Type ModelType { get; }

    /// <summary>The spec as JSON with its <c>kind</c> first (stored in checkpoints, so it must not change).</summary>
    string SpecToJson(ArchitectureSpec spec);

    /// <summary>Reads a spec of this family's kind (not yet validated); JSON errors propagate as thrown.</summary>
    ArchitectureSpec? SpecFromJson(string json);

    /// <summary>Builds a freshly initialised model from its spec.</summary>
    IScaleGrowModel Build(ArchitectureSpec spec);

    /// <summary>Parameters and FLOPs counted from the spec alone (checked arithmetic; an overflow throws).</summary>
    ModelStats CountStats(ArchitectureSpec spec);

    /// <summary>Values of every layer output for one sample (the input included), for <see cref="ModelMemory"/>.
    /// </summary>
    long ActivationsPerSample(ArchitectureSpec spec);

    /// <summary>The per-sample input shape: (C, H, W) for images, (T) for token ids.</summary>
    long[] InputShape(ArchitectureSpec spec);

    /// <summary>True when the model reads token ids (text), false when it reads images.</summary>
    bool ReadsText(ArchitectureSpec spec);

    /// <summary>True for a language model (next-token logits over a vocabulary) rather than a classifier.</summary>
    bool IsLanguageModel { get; }

    /// <summary>True when the family grows multi-branch blocks (CNN): block-level placement rules and branch merging
    /// apply to it only.</summary>
    bool HasMultiBranchBlocks => false;

    // The members from here on default to a family without branches (nothing to fuse, no overlap maps, grown
    // tensors copied as leading slices); a family overrides what it has.

    /// <summary>True when <paramref name="model"/> is already in its inference form (nothing to fuse).</summary>
    bool IsInferenceForm(IScaleGrowModel model) => true;

    /// <summary>The number of multi-branch units <see cref="ToInferenceForm"/> merges (0 when none).</summary>
    int FusibleUnits(IScaleGrowModel model) => 0;

    /// <summary>A new model computing the same function in inference form (structural re-parameterization, RepVGG);
    /// <paramref name="model"/> itself when it already is.</summary>
    IScaleGrowModel ToInferenceForm(IScaleGrowModel model) => model;

    /// <summary>The overlap maps a checkpoint of this spec carries (fused CNN kernels, thesis 4.2), or null.</summary>
    IReadOnlyDictionary<string, int[,]>? OverlapMaps(ArchitectureSpec spec) => null;

    /// <summary>One line per layer naming its units' parallel branches (<c>inspect</c>), empty when the family has
    /// no branches.</summary>
    IReadOnlyList<string> BranchLines(ArchitectureSpec spec) => [];

    /// <summary>Puts an old tensor's values into a grown tensor when its layout is not a leading slice (every attention
    /// head wider); false when the leading-slice copy of <see cref="TensorPlacement"/> applies.</summary>
    bool TryPlaceGrown(Tensor target, Tensor source, string name, ArchitectureSpec oldSpec, ArchitectureSpec newSpec) =>
        false;
}
