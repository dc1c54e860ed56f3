using ScaleGrow.Models.Cnn;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models;

/// <summary>
/// Size and cost of a model counted from its architecture spec. FLOPs are multiply-accumulates per sample (the
/// convention of the thesis tables: VGG-2-2-2 at 32×32 is 161 M), by layer type; batch norms and activations are not
/// counted (they vanish or are negligible at inference).
/// </summary>
public sealed record ModelStats(long Parameters, long ParametersFused, long Flops, long FlopsFused,
    IReadOnlyDictionary<string, long> FlopsByType)
{
    /// <summary>Counts with overflow checks: a spec whose counts do not fit 64 bits (an image size of 2^31 − 1 gave
    /// negative FLOPs) is an <see cref="InvalidSpecException"/>.</summary>
    public static ModelStats Of(ArchitectureSpec spec)
    {
        try
        {
            return (ModelFamilies.TryFor(spec) ?? throw new InvalidSpecException(
                $"no statistics for spec kind {spec.GetType().Name}")).CountStats(spec);
        }
        catch (OverflowException)
        {
            throw new InvalidSpecException($"{spec.ArchString}: its parameter or FLOP counts overflow 64 bits");
        }
    }

    /// <summary>Unique trainable parameters of a built module (a tensor shared by several layers counts once).</summary>
    public static long CountParameters(nn.Module module)
    {
        var seen = new HashSet<IntPtr>();
        long total = 0;
        foreach (var p in module.parameters())
            if (seen.Add(p.Handle)) total += p.numel();
        return total;
    }
}

internal static class CnnStatsCounter
{
    public static ModelStats Count(CnnSpec spec)
    {
        checked
        {
            long parameters = 0, parametersFused = 0, flops = 0, flopsFused = 0;
            var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
            void AddFlops(string type, long n, bool fusedToo)
            {
                byType[type] = byType.GetValueOrDefault(type) + n;
                flops += n;
            }

            int size = spec.ImageSize;
            foreach (var (role, index, layer) in spec.AllLayers())
            {
                var geometry = CnnGeometry.UnitsOf(spec, role, index);
                if (role == LayerRole.Downsample)
                {
                    // The BN over the finished block's output.
                    parameters += 2L * geometry[0].InChannels;
                    parametersFused += 2L * geometry[0].InChannels;
                }
                int inSize = size;
                for (int u = 0; u < geometry.Count; u++)
                {
                    var g = geometry[u];
                    int outSize = (inSize - 1) / g.Stride + 1;
                    long positions = (long)outSize * outSize;
                    long mainKernel = (long)g.OutChannels * (g.InChannels / g.Groups) * g.KernelH * g.KernelW;
                    string type = g.IsDepthwise ? "depthwise" : g.KernelH * g.KernelW == 1 ? "pointwise" : "conv";
                    parametersFused += mainKernel + g.OutChannels;
                    flopsFused += positions * mainKernel;
                    if (spec.Fused)
                    {
                        parameters += mainKernel + g.OutChannels;
                        AddFlops(type, positions * mainKernel, true);
                    }
                    else
                    {
                        foreach (var b in layer.Units[u].Branches)
                        {
                            var kind = BranchKind.Parse(b.Kind);
                            parameters += 2L * g.OutChannels; // the branch's BN
                            switch (kind.Type)
                            {
                                case BranchType.Conv:
                                    long k = (long)g.OutChannels * (g.InChannels / g.Groups) * kind.KernelH *
                                             kind.KernelW;
                                    parameters += k;
                                    AddFlops(type, positions * k, false);
                                    break;
                                case BranchType.AvgPool:
                                    AddFlops("pool", positions * g.OutChannels * g.KernelH * g.KernelW, false);
                                    break;
                            }
                        }
                    }
                    inSize = outSize;
                }
                if (role == LayerRole.Block && spec.Family == CnnFamily.MobileNetV3)
                {
                    int c = geometry[1].OutChannels, h = CnnGeometry.SqueezeChannels(c);
                    long se = 2L * c * h + c + h;
                    parameters += se;
                    parametersFused += se;
                    AddFlops("se", 2L * c * h, true);
                    flopsFused += 2L * c * h;
                }
                size = inSize;
            }
            int last = spec.StageWidths[^1];
            long head = 2L * last + (long)last * spec.NumClasses + spec.NumClasses;
            parameters += head;
            parametersFused += head;
            AddFlops("linear", (long)last * spec.NumClasses, true);
            flopsFused += (long)last * spec.NumClasses;
            return new ModelStats(parameters, parametersFused, flops, flopsFused, byType);
        }
    }
}

internal static class TransformerStatsCounter
{
    /// <summary>Parameters and MACs of the encoder (attention's QKᵀ and AV products included).</summary>
    public static ModelStats Count(Transformer.TransformerSpec spec)
    {
        checked
        {
            long w = spec.Width, h = spec.MlpHidden, t = spec.Tokens, layers = spec.Layers.Count;
            var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
            long embedParams, embedFlops;
            if (spec.Modality == Transformer.TransformerModality.Image)
            {
                long patch = (long)spec.InputChannels * spec.PatchSize * spec.PatchSize;
                embedParams = w * patch + w + w + t * w;
                embedFlops = (t - 1) * w * patch;
            }
            else
            {
                embedParams = (long)spec.VocabSize * w + t * w;
                embedFlops = 0;
            }
            long norms = 2 * w + 2 * w;
            long perLayerParams = norms + 4 * (w * w + w) + (w * h + h) + (h * w + w);
            long projections = t * (4 * w * w + 2 * w * h);
            long attention = 2 * t * t * w;
            long head = w * spec.NumClasses;
            // ScaleNet: a shared layer's weights count once; every instance adds its adapters (and own norms).
            var shapes = Transformer.TransformerLayer.Projections(spec);
            long layerParams = 0, adapterFlops = 0;
            foreach (var l in spec.Layers)
            {
                layerParams += l.SharesWith is null ? perLayerParams : l.Adapter is { OwnNorms: true } ? norms : 0;
                layerParams += ScaleGrow.Models.Adapters.AdapterCounts.Parameters(l.Adapter, spec.Width, shapes, bias: true);
                adapterFlops += t * ScaleGrow.Models.Adapters.AdapterCounts.MacsPerToken(l.Adapter, spec.Width, shapes);
            }
            byType["embedding"] = embedFlops;
            byType["linear"] = layers * projections + head;
            byType["attention"] = layers * attention;
            if (adapterFlops > 0) byType["adapter"] = adapterFlops;
            long parameters = embedParams + layerParams + 2 * w + head + spec.NumClasses;
            long flops = embedFlops + layers * (projections + attention) + adapterFlops + head;
            return new ModelStats(parameters, parameters, flops, flops, byType);
        }
    }
}

internal static class DecoderStatsCounter
{
    /// <summary>Parameters (unique) and MACs of a decoder over a context of <c>maxPositions</c> tokens.</summary>
    public static ModelStats Count(Decoder.DecoderSpec spec)
    {
        checked
        {
            long w = spec.Hidden, t = spec.MaxPositions, inner = (long)spec.Heads * spec.HeadDim;
            long kv = (long)spec.KvHeads * spec.HeadDim, i = spec.Intermediate, v = spec.VocabSize;
            long norms = 2 * w;
            long perLayer = norms + w * inner * 2 + w * kv * 2 + 3 * w * i;
            long projections = t * (w * inner * 2 + w * kv * 2 + 3 * w * i);
            long attention = 2 * t * t * inner;
            var shapes = spec.LayerProjections;
            long layerParams = 0, adapterFlops = 0;
            foreach (var l in spec.Layers)
            {
                layerParams += l.SharesWith is null ? perLayer : l.Adapter is { OwnNorms: true } ? norms : 0;
                layerParams += ScaleGrow.Models.Adapters.AdapterCounts.Parameters(l.Adapter, spec.Hidden, shapes, bias: false);
                adapterFlops += t * ScaleGrow.Models.Adapters.AdapterCounts.MacsPerToken(l.Adapter, spec.Hidden, shapes);
            }
            long head = t * w * v;
            var byType = new SortedDictionary<string, long>(StringComparer.Ordinal)
            {
                ["linear"] = spec.Layers.Count * projections + head,
                ["attention"] = spec.Layers.Count * attention,
            };
            if (adapterFlops > 0) byType["adapter"] = adapterFlops;
            long parameters = v * w + (spec.TieEmbeddings ? 0 : v * w) + w + layerParams;
            long flops = byType.Values.Sum();
            return new ModelStats(parameters, parameters, flops, flops, byType);
        }
    }
}
