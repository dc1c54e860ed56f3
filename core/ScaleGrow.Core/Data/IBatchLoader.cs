using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>
/// What the image and text batch loaders share: how many batches an epoch holds, and the (inputs, labels) batches of
/// one epoch, made lazily inside the caller's dispose scope.
/// </summary>
public interface IBatchLoader
{
    int BatchCount { get; }
    IEnumerable<(Tensor X, Tensor Y)> Epoch(int epoch);
}
