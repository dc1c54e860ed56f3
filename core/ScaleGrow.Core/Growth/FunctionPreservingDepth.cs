using ScaleGrow.Models.Cnn;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Growth;

/// <summary>
/// Makes a CNN depth growth leave the model's function (nearly) unchanged, so a new layer does not knock validation
/// accuracy down while it learns (option <c>preserveFunction</c>; the issue measured 5–8 points lost per insertion
/// that does not preserve the function).
/// <list type="bullet">
/// <item>Residual layers (ResNet, Bottleneck, MobileNetV3): the γ of the last unit's norm starts at 0, so the residual
/// branch adds 0 — "zero-γ" residual initialisation (Goyal et al. 2017). The other units keep the inherited
/// initialiser, so the branch has gradients from the first step (γ's own gradient is not zero). Exact for ResNet and
/// Bottleneck, whose layer input is already non-negative (a ReLU output); MobileNetV3 ends in SiLU, so the layer
/// computes SiLU(x) instead of x: close, not exact.</item>
/// <item>VGG layers (Net2DeeperNet, Chen et al. 2016, with BN): an identity (Dirac) kernel, and a norm that undoes
/// its own normalisation — γ = the standard deviation and β = the mean of the layer's input, per channel, measured on
/// a calibration batch; the running statistics are set to the same values, so train and eval mode both pass the
/// input through. The input is a ReLU output (non-negative), so the final ReLU keeps it. Exact in eval mode, and in
/// train mode up to how far a batch's statistics are from the calibration batch's.</item>
/// </list>
/// New branches of existing units (width growth) start at γ = 0, done by <see cref="ModelRebuilder"/>.
/// </summary>
public static class FunctionPreservingDepth
{
    /// <summary>
    /// Re-initialises every layer of <paramref name="grown"/> that <paramref name="old"/> does not have.
    /// <paramref name="calibration"/> (B, C, H, W) is a batch of training inputs; needed for VGG only.
    /// </summary>
    public static void Apply(CnnModel grown, CnnSpec old, Tensor? calibration)
    {
        var oldIds = old.AllLayers().Select(l => l.Layer.Id).ToHashSet();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        for (int b = 0; b < grown.Blocks.Count; b++)
        {
            var layers = grown.Blocks[b].Layers;
            for (int position = 0; position < layers.Count; position++)
            {
                var layer = layers[position];
                if (oldIds.Contains(layer.Spec.Id)) continue;
                if (layer is PlainLayer) PassThrough(grown, b, position, layer, calibration);
                else ZeroResidual(layer);
            }
        }
    }

    private static void ZeroResidual(CnnLayer layer)
    {
        for (int u = 0; u < layer.Units.Count; u++)
            foreach (var branch in ((ConvUnit)layer.Units[u]).Branches)
            {
                if (u == layer.Units.Count - 1) branch.Norm.weight!.zero_();
                else branch.Norm.weight!.fill_(1.0); // undo the rebuilder's blanket γ = 0: keep the branch trainable
            }
    }

    private static void PassThrough(CnnModel grown, int block, int position, CnnLayer layer, Tensor? calibration)
    {
        if (calibration is null)
            throw new InvalidSpecException(
                "growth: a function-preserving VGG layer needs a calibration batch to measure its input statistics");
        var unit = (ConvUnit)layer.Units[0];
        var g = unit.Geometry;
        var input = TrainModeInput(grown, block, position, calibration);           // (B, C, H, W)
        var mean = input.mean([0, 2, 3]);                                           // (C)
        var variance = input.var([0, 2, 3], unbiased: false);                       // (C)
        foreach (var branch in unit.Branches)
        {
            if (branch.Conv is { } conv)
            {
                conv.weight!.zero_();
                var w = conv.weight!;
                var channels = torch.arange(g.OutChannels, dtype: ScalarType.Int64, device: w.device);
                w.index_put_(torch.ones(g.OutChannels, dtype: w.dtype, device: w.device), channels, channels,
                    torch.full(g.OutChannels, branch.Kind.KernelH / 2, dtype: ScalarType.Int64, device: w.device),
                    torch.full(g.OutChannels, branch.Kind.KernelW / 2, dtype: ScalarType.Int64, device: w.device));
            }
            var norm = branch.Norm;
            norm.weight!.copy_((variance + ConvBranch.BatchNormEps).sqrt());
            norm.bias!.copy_(mean);
            norm.running_mean!.copy_(mean);
            norm.running_var!.copy_(variance);
        }
    }

    /// <summary>
    /// The new layer's input as training computes it — earlier norms normalising with the batch's own statistics —
    /// without letting this extra pass move their running statistics.
    /// </summary>
    private static Tensor TrainModeInput(CnnModel grown, int block, int position, Tensor calibration)
    {
        var buffers = grown.named_buffers().Select(b => (b.buffer, Saved: b.buffer.clone())).ToList();
        bool wasTraining = grown.training;
        grown.train();
        try
        {
            return grown.ForwardTo(block, position, calibration);
        }
        finally
        {
            foreach (var (buffer, saved) in buffers) buffer.copy_(saved);
            if (!wasTraining) grown.eval();
        }
    }
}
