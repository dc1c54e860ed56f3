using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Adapters;

/// <summary>
/// A parallel bottleneck adapter (He et al. 2022, "Towards a unified view of parameter-efficient transfer learning"):
/// <c>up(GELU(down(h)))</c> added to a sub-layer's output, reading the same (normed) input h as the sub-layer. The
/// up-projection starts at zero, so a new adapter changes nothing until it trains. Parameters: <c>down.*</c>,
/// <c>up.*</c>.
/// </summary>
public sealed class ParallelAdapter : nn.Module<Tensor, Tensor>
{
    private readonly Linear down;
    private readonly Linear up;

    public ParallelAdapter(string name, int width, int rank, bool bias = true) : base(name)
    {
        down = nn.Linear(width, rank, hasBias: bias);
        up = nn.Linear(rank, width, hasBias: bias);
        RegisterComponents();
        using var noGrad = torch.no_grad();
        // down keeps PyTorch's default Kaiming-uniform init so up receives a gradient from the first step.
        up.weight!.zero_();
        up.bias?.zero_();
    }

    public override Tensor forward(Tensor h) => up.forward(nn.functional.gelu(down.forward(h)));  // (…, W)
}

/// <summary>
/// One LoRA pair (Hu et al. 2021) for a shared linear map W: the instance computes <c>W·x + B·(A·x)</c>. A starts
/// Kaiming-uniform as in the LoRA reference, B at zero, and the scale α/r is 1 (α = r): with B = 0 the instance is
/// exactly the shared layer. Parameters: <c>a</c> (r × in), <c>b</c> (out × r).
/// </summary>
public sealed class LowRankDelta : nn.Module<Tensor, Tensor>
{
    private readonly Parameter a;
    private readonly Parameter b;

    public LowRankDelta(string name, int inFeatures, int outFeatures, int rank) : base(name)
    {
        double bound = 1.0 / Math.Sqrt(inFeatures);
        a = new Parameter(torch.empty(rank, inFeatures).uniform_(-bound, bound));
        b = new Parameter(torch.zeros(outFeatures, rank));
        RegisterComponents();
    }

    /// <summary>The change of the projection's output for input <paramref name="x"/> (…, in) → (…, out).</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(nn.functional.linear(x, a), b);
}
