using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Transformer;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Scaling;

/// <summary>What an expansion did, as data (for journals and reports).</summary>
/// <param name="Mapping">For each instance in forward order: its layer id, the pretrained layer id it runs, and
/// whether it shares that layer's tensors.</param>
public sealed record ScaleNetExpansion(
    string ArchBefore, string ArchAfter, LayerMappingKind MappingKind, IReadOnlyList<ScaleNetInstance> Mapping,
    long ParametersBefore, long ParametersAfter, IReadOnlyList<string> NewParameters);

/// <summary>One layer instance of an expanded model.</summary>
public sealed record ScaleNetInstance(int LayerId, int SourceLayerId, bool Shared);

/// <summary>
/// ScaleNet (issue 8; arXiv 2510.18431): a pretrained model with L layers becomes L' layers deep, instance l'
/// running the weights θ_g(l') of a pretrained layer through the same tensors, plus per-instance adapters. With
/// zero-initialised adapter outputs the expanded model computes exactly the pretrained layers run in the mapped
/// order. Works on any <see cref="ILayeredSpec"/> family (ViT/BERT encoder, Llama-style decoder): the spec says which
/// layer shares what, the family's builder wires the shared modules, and this class moves the pretrained values
/// across by name.
/// </summary>
public static class ScaleNetExpander
{
    /// <summary>The expanded spec and its instance mapping (no weights involved).</summary>
    public static (ArchitectureSpec Spec, IReadOnlyList<ScaleNetInstance> Mapping) ExpandSpec(ArchitectureSpec spec,
        ScaleNetOptions options)
    {
        if (spec is not ILayeredSpec layered)
            throw new InvalidSpecException(
                $"scalenet: a {spec.GetType().Name} has no layer stack to expand (expected a transformer or decoder)");
        var layers = layered.Layers;
        if (layers.Any(l => l.SharesWith is not null || l.Adapter is not null))
            throw new InvalidSpecException(
                "scalenet: the model is already expanded (it has shared layers or adapters); " +
                "expand the pretrained model");
        int target = options.TargetFor(layers.Count);
        var map = LayerMapping.Map(options.Mapping, layers.Count, target);
        var adapter = options.AdapterSpec;
        int nextId = layered.NextId;
        var expanded = new List<TransformerLayerSpec>(target);
        var instances = new List<ScaleNetInstance>(target);
        foreach (var m in map)
        {
            var source = layers[m.Source];
            int id = m.IsOriginal ? source.Id : nextId++;
            bool shared = !m.IsOriginal && options.ShareWeights;
            expanded.Add(new TransformerLayerSpec
            {
                Id = id, SharesWith = shared ? source.Id : null, Adapter = adapter,
            });
            instances.Add(new ScaleNetInstance(id, source.Id, shared));
        }
        var result = layered.WithLayers(expanded, nextId);
        result.Validate();
        return (result, instances);
    }

    /// <summary>
    /// Expands a pretrained model: builds the expanded model from its spec, then gives every tensor its pretrained
    /// value — the pretrained layers' own, shared instances through their owner's tensors, own norms and (with
    /// <see cref="ScaleNetOptions.ShareWeights"/> off) independent copies from their source layer. Adapters keep their
    /// zero-output initialisation, drawn from <paramref name="seed"/>.
    /// </summary>
    public static (IScaleGrowModel Model, ScaleNetExpansion Expansion) Expand(IScaleGrowModel pretrained,
        ScaleNetOptions options, long seed)
    {
        var (spec, mapping) = ExpandSpec(pretrained.Spec, options);
        torch.manual_seed(seed);
        var expanded = ModelFactory.Create(spec); // adapters drawn on the CPU: the same on every device
        ScaleGrow.ComputeDevice.Of(pretrained.Module).Place(expanded.Module);
        var sourceOf = mapping.Where(m => m.LayerId != m.SourceLayerId)
            .ToDictionary(m => m.LayerId, m => m.SourceLayerId);
        var layerSpecs = ((ILayeredSpec)spec).Layers;
        var old = pretrained.Module.state_dict();
        var newParameters = new List<string>();
        using (torch.no_grad())
        {
            foreach (var (name, target) in expanded.Module.state_dict())
            {
                if (LayerInstances.IsAdapterParameter(name))
                {
                    newParameters.Add(name);
                    continue;
                }
                string from = SourceName(name, sourceOf);
                if (!old.TryGetValue(from, out var value))
                    throw new InvalidSpecException($"scalenet: no pretrained tensor '{from}' for '{name}'");
                if (!value.shape.SequenceEqual(target.shape))
                    throw new InvalidSpecException(
                        $"scalenet: pretrained tensor '{from}' has shape [{string.Join(",", value.shape)}], " +
                        $"'{name}' needs [{string.Join(",", target.shape)}]");
                target.copy_(value);
            }
        }
        newParameters.AddRange(expanded.Module.named_parameters().Select(p => p.name)
            .Where(n => !LayerInstances.IsAdapterParameter(n) && !old.ContainsKey(n)));
        newParameters = newParameters.Distinct().Order(StringComparer.Ordinal).ToList();
        var expansion = new ScaleNetExpansion(pretrained.Spec.ArchString, spec.ArchString, options.Mapping, mapping,
            ModelStats.CountParameters(pretrained.Module), ModelStats.CountParameters(expanded.Module), newParameters);
        if (options.TrainAdaptersOnly) FreezeShared(expanded, layerSpecs);
        return (expanded, expansion);
    }

    /// <summary>
    /// The parameters to train, under their canonical names: every unique parameter, or with
    /// <paramref name="adaptersOnly"/> only the per-instance ones (adapters, LoRA pairs, own norms) — the others are
    /// then frozen (requires_grad off) so no gradient is computed for them.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Param)> TrainableParameters(IScaleGrowModel model,
        bool adaptersOnly)
    {
        if (adaptersOnly)
        {
            var layers = (model.Spec as ILayeredSpec)?.Layers ??
                         throw new InvalidSpecException("scalenet: adapters-only training needs a layered model");
            FreezeShared(model, layers);
        }
        return model.Module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))
            .ToList();
    }

    private static void FreezeShared(IScaleGrowModel model, IReadOnlyList<TransformerLayerSpec> layers)
    {
        var perInstance = model.Module.named_parameters().Where(p => LayerInstances.IsPerInstance(p.name, layers))
            .ToList();
        if (perInstance.Count == 0)
            throw new InvalidSpecException(
                "scalenet: adapters-only training needs per-instance parameters (an adapter or own norms)");
        var keep = perInstance.Select(p => p.parameter.Handle).ToHashSet();
        foreach (var (_, p) in model.Module.named_parameters())
            p.requires_grad = keep.Contains(p.Handle);
    }

    /// <summary>The pretrained tensor an expanded model's tensor starts from (new instances read their source's).
    /// </summary>
    private static string SourceName(string name, IReadOnlyDictionary<int, int> sourceOf)
    {
        if (!name.StartsWith("layers.L", StringComparison.Ordinal)) return name;
        int dot = name.IndexOf('.', 8);
        if (dot < 0 || !int.TryParse(name.AsSpan(8, dot - 8), out int id) || !sourceOf.TryGetValue(id, out int source))
            return name;
        return $"layers.L{source}{name[dot..]}";
    }
}
