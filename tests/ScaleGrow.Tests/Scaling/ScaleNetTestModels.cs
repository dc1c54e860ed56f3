using ScaleGrow.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Scaling;

/// <summary>Tiny models and inputs shared by the ScaleNet tests.</summary>
internal static class ScaleNetTestModels
{
    public static TransformerSpec Vit(int layers = 3) =>
        TransformerSpec.Seed(TransformerModality.Image, 5, headDim: 4, layers: layers, heads: 2) with
        {
            InputChannels = 1,
            ImageSize = 8,
            PatchSize = 4,
            MlpRatio = 2,
        };

    public static Tensor Images(long batch = 3) => torch.randn(batch, 1, 8, 8);

    /// <summary>Gives every parameter non-trivial values, as a pretrained model would have.</summary>
    public static void Randomize(nn.Module model, double scale = 0.3)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
            p.copy_(name.Contains("norm") && name.EndsWith("weight")
                ? torch.rand_like(p) + 0.5
                : torch.randn_like(p) * scale);
    }

    public static double MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
