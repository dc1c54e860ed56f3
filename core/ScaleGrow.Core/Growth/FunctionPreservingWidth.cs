using ScaleGrow.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Growth;

/// <summary>
/// Makes a Transformer width growth leave the model's function unchanged (option <c>preserveFunction</c>).
/// Zero-initialising new rows is not enough under LayerNorm: zeros in the new residual dimensions change every
/// norm's mean and variance. Instead the new residual dimensions are made to carry, for every token, the mean of the
/// old ones — then the mean is unchanged and the variance shrinks by exactly d/d′, which the old γ absorb
/// (γ·√(d/d′)); the norms' new outputs are ignored because every consumer's new input columns are zero.
/// Concretely: embedding and output-projection (attention O, MLP fc2) new rows = mean of the old rows (biases too);
/// Q/K/V/fc1/classifier new input columns = 0; attention-O and fc2 new input columns (the new head, new hidden
/// units) = 0. Exact up to LayerNorm's ε.
/// </summary>
public static class FunctionPreservingWidth
{
    public static void Apply(TransformerModel grown, TransformerSpec old, IReadOnlyDictionary<string, Tensor> oldState)
    {
        int d = old.Width, d2 = grown.Spec.Width;
        if (d2 == d) return;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        double shrink = Math.Sqrt((double)d / d2);
        int hidden = old.MlpHidden;
        foreach (var (name, p) in grown.named_parameters())
        {
            if (grown.Spec.HeadDim != old.HeadDim && name.Contains(".attn.q.", StringComparison.Ordinal))
            {
                // Wider heads: attention scales by 1/√d′ now; rescale the old query rows and silence the new ones so
                // every head's scores stay q·k/√d.
                var within = torch.arange(p.shape[0], dtype: ScalarType.Int64, device: p.device) % grown.Spec.HeadDim;
                var isNew = within.ge(old.HeadDim);
                var rows = p.dim() == 2 ? isNew.unsqueeze(1) : isNew;
                p.mul_(torch.where(rows, 0.0, Math.Sqrt((double)grown.Spec.HeadDim / old.HeadDim)));
                if (p.dim() == 1) continue;
            }
            bool isNorm = name.EndsWith("norm1.weight") || name.EndsWith("norm2.weight") || name == "norm.weight";
            if (isNorm)
            {
                if (oldState.ContainsKey(name)) p[..d].mul_(shrink);
                continue;
            }
            if (name.EndsWith(".attn.o.weight") || name.EndsWith(".mlp.fc2.weight"))
            {
                // The new head (or the new part of every head) and new hidden units contribute nothing.
                if (name.EndsWith(".attn.o.weight") && grown.Spec.HeadDim != old.HeadDim)
                {
                    var within = torch.arange(p.shape[1], dtype: ScalarType.Int64, device: p.device) % grown.Spec.HeadDim;
                    p.index_fill_(1, within.ge(old.HeadDim).nonzero().flatten(), 0);
                }
                else
                {
                    p[.., (name.EndsWith(".attn.o.weight") ? old.Heads * old.HeadDim : hidden)..].zero_();
                }
                p[d.., ..].copy_(p[..d, ..].mean(new long[] { 0 }, keepdim: true).expand(d2 - d, -1));
            }
            else if (name.EndsWith(".attn.o.bias") || name.EndsWith(".mlp.fc2.bias") || name == "embed.patch.bias")
            {
                p[d..].fill_(ScaleGrow.Training.Trainer.ReadFloat(p[..d].mean()));
            }
            else if (name == "embed.patch.weight")
            {
                p[d..].copy_(p[..d].mean(new long[] { 0 }, keepdim: true).expand(d2 - d, -1, -1, -1));
            }
            else if (name is "embed.cls" or "embed.pos")
            {
                p[.., .., d..].copy_(p[.., .., ..d].mean(new long[] { 2 }, keepdim: true).expand(-1, -1, d2 - d));
            }
            else if (name == "embed.tokens.weight")
            {
                p[.., d..].copy_(p[.., ..d].mean(new long[] { 1 }, keepdim: true).expand(-1, d2 - d));
            }
            else if (name.EndsWith(".weight") && p.dim() == 2 && (name.Contains(".attn.q.") || name.Contains(".attn.k.")
                         || name.Contains(".attn.v.") || name.Contains(".mlp.fc1.") || name == "head.weight"))
            {
                p[.., d..].zero_();                              // consumers ignore the new residual dimensions
            }
        }
    }
}
