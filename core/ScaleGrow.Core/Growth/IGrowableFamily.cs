using ScaleGrow.Models;
using static TorchSharp.torch;

namespace ScaleGrow.Growth;

/// <summary>
/// The growth part of a model family (algorithm 3-1): importance scoring, the grow decision with its target rule, the
/// function-preserving initialisation after a rebuild, and the branch merge of fine-tuning. Implemented by the family
/// class beside <see cref="IModelFamily"/>; reached with <c>ModelFamilies.Part&lt;IGrowableFamily&gt;</c>.
/// </summary>
public interface IGrowableFamily
{
    /// <summary>The network's own scale factors as importance (thesis 3.3.3 (1), 3.4.1).</summary>
    ImportanceReport ScoreImportance(IScaleGrowModel model);

    /// <summary>The grown spec and action, or why growth stops (see <see cref="GrowthPlanner.Decide"/>).</summary>
    GrowthDecision Decide(ArchitectureSpec spec, ImportanceReport scores, GrowthProgress progress,
        GrowthOptions options, long runSeed);

    /// <summary>Checks a target architecture string against the seed spec; throws <see cref="InvalidSpecException"/>.
    /// </summary>
    void ValidateTarget(string target, ArchitectureSpec spec);

    /// <summary>True when <see cref="PreserveFunction"/> needs a batch of training inputs for this growth.</summary>
    bool NeedsCalibration(ArchitectureSpec grownSpec, InitOptions init, GrowthKind kind);

    /// <summary>Makes a rebuilt model compute what the old one did (tables 3-9, 3-15), when the init asks for it.
    /// </summary>
    void PreserveFunction(IScaleGrowModel grown, ArchitectureSpec oldSpec,
        IReadOnlyDictionary<string, Tensor> oldState, Tensor? calibration);

    /// <summary>True when <paramref name="model"/> has parallel branches that fine-tuning can merge.</summary>
    bool HasBranchesToMerge(IScaleGrowModel model);

    /// <summary>Merges every multi-branch unit into one trainable branch; returns the merged model and the rewritten
    /// parameter names.</summary>
    (IScaleGrowModel Model, IReadOnlyList<string> Rewritten) MergeBranches(IScaleGrowModel model, Tensor calibration);
}
