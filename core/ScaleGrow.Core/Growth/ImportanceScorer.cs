using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Growth;

/// <summary>Importance of one layer: the mean |γ| of its batch norms (each unit averaged over its branches).</summary>
public sealed record LayerImportance(int LayerId, LayerRole Role, int Index, double Score);

/// <summary>Importance of one block: the mean |γ| of the Conv-BN unit that feeds it (averaged over its branches).</summary>
public sealed record BlockImportance(int Index, double Score);

public sealed record ImportanceReport(IReadOnlyList<BlockImportance> Blocks, IReadOnlyList<LayerImportance> Layers)
{
    public IEnumerable<LayerImportance> LayersOfBlock(int block) =>
        Layers.Where(l => l.Role == LayerRole.Block && l.Index == block);
}

/// <summary>
/// The network's own scale factors as importance (thesis 3.3.3 (1), figure 3-4). A block is scored by the BN outside
/// it — the thesis collects "the BN layers outside the computing blocks" — of the Conv-BN unit that produces the
/// block's input: the stem for the first block, the preceding down-sampling convolution for the others. These units
/// all have the same shape (Conv-BN-activation feeding a block), so blocks are compared like for like, and an empty
/// block is scored the same way as a full one. A layer is scored by the mean |γ| of its own Conv-BN units, each unit's
/// score being the mean over its parallel branches. Every norm read here sits in the forward path and trains, so the
/// scores move with training (a norm whose output is discarded would freeze the order).
/// </summary>
public static class ImportanceScorer
{
    /// <summary>Scores any growable model (CNN: batch norms; Transformer: layer norms).</summary>
    public static ImportanceReport Score(ScaleGrow.Models.IScaleGrowModel model) =>
        (ModelFamilies.TryFor(model.Spec) as IGrowableFamily ??
         throw new InvalidSpecException($"importance: no scorer for {model.GetType().Name}")).ScoreImportance(model);

    /// <summary>
    /// Transformer layers (thesis 3.4.1): the mean |γ| of the layer's LayerNorms. The whole encoder is one block,
    /// scored by the final norm.
    /// </summary>
    public static ImportanceReport Score(ScaleGrow.Models.Transformer.TransformerModel model)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var layers = model.Layers.Select((l, i) => new LayerImportance(model.Spec.Layers[i].Id, LayerRole.Block, 0,
            l.Norms.Average(n => (double)Trainer.ReadFloat(n.weight!.detach().abs().mean())))).ToList();
        var block = new BlockImportance(0, Trainer.ReadFloat(model.FinalNorm.weight!.detach().abs().mean()));
        return new ImportanceReport([block], layers);
    }

    public static ImportanceReport Score(CnnModel model)
    {
        if (model.Spec.Fused)
            throw new InvalidSpecException("importance: a fused model has no batch norms to score; score before fusion");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var blocks = Enumerable.Range(0, model.Blocks.Count)
            .Select(b => new BlockImportance(b, UnitScore(model.BlockInputUnit(b)))).ToList();
        var layers = new List<LayerImportance>();
        foreach (var (role, index, layer) in model.AllLayers())
            layers.Add(new LayerImportance(layer.Spec.Id, role, index, LayerScore(layer)));
        return new ImportanceReport(blocks, layers);
    }

    public static double LayerScore(CnnLayer layer) =>
        layer.Units.Count == 0 ? 0 : layer.Units.Average(UnitScore);

    /// <summary>Mean over a unit's parallel branches of the mean |γ| of the branch's BN.</summary>
    public static double UnitScore(nn.Module<Tensor, Tensor> unit) => unit is ConvUnit u
        ? u.Branches.Average(b => MeanAbs(b.Norm))
        : throw new InvalidSpecException("importance: a fused unit has no batch norms");

    private static double MeanAbs(BatchNorm2d norm) => Trainer.ReadFloat(norm.weight!.detach().abs().mean());
}
