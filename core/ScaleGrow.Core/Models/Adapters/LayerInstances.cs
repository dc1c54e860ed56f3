using ScaleGrow.Models.Transformer;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Adapters;

/// <summary>
/// Builds the layer modules of a stack whose layers may share weights (ScaleNet's layer mapping): a layer with
/// <see cref="TransformerLayerSpec.SharesWith"/> is built around the very module objects of the layer it names, so
/// there is one tensor per shared weight and its gradient accumulates from every instance. Owners are registered
/// before the instances that share them: TorchSharp's <c>named_parameters()</c> keeps the first name it meets for a
/// parameter, which is then always the owner's (<c>layers.L3.attn.q.weight</c>), while <c>state_dict()</c> lists
/// every name (the checkpoint codec stores the tensor once and the other names as aliases).
/// </summary>
public static class LayerInstances
{
    /// <param name="create">Builds a layer from its spec and, for a sharing instance, the owner layer.</param>
    /// <returns>The layers in forward (spec) order.</returns>
    public static IReadOnlyList<T> Build<T>(nn.Module parent, IReadOnlyList<TransformerLayerSpec> specs,
        Func<TransformerLayerSpec, T?, T> create) where T : nn.Module
    {
        var byId = new Dictionary<int, T>();
        foreach (var spec in specs.Where(s => s.SharesWith is null))
        {
            var layer = create(spec, null);
            byId.Add(spec.Id, layer);
            parent.register_module($"L{spec.Id}", layer);
        }
        foreach (var spec in specs.Where(s => s.SharesWith is not null))
        {
            if (!byId.TryGetValue(spec.SharesWith!.Value, out var owner))
                throw new InvalidSpecException(
                    $"layer L{spec.Id} shares with L{spec.SharesWith}, which is not a layer");
            var layer = create(spec, owner);
            byId.Add(spec.Id, layer);
            parent.register_module($"L{spec.Id}", layer);
        }
        return specs.Select(s => byId[s.Id]).ToList();
    }

    /// <summary>
    /// Checks the sharing and adapters of a layer list: a layer shares with another layer of the list that owns its
    /// weights (no chains, not itself), and every adapter is valid for <paramref name="width"/>.
    /// </summary>
    public static void Validate(IReadOnlyList<TransformerLayerSpec> layers, int width, string where)
    {
        var owners = layers.Where(l => l.SharesWith is null).Select(l => l.Id).ToHashSet();
        foreach (var l in layers)
        {
            if (l.SharesWith is int target && !owners.Contains(target))
                throw new InvalidSpecException(
                    $"{where}: layer L{l.Id} shares with L{target}, which is not a layer that owns its weights");
            l.Adapter?.Validate($"{where}: layer L{l.Id}", width);
        }
    }

    /// <summary>An adapter or LoRA tensor of a layer instance (<c>layers.L7.adapter.…</c>, <c>layers.L7.lora.…</c>).
    /// </summary>
    public static bool IsAdapterParameter(string name)
    {
        var parts = name.Split('.', 4);
        return parts.Length >= 3 && parts[0] == "layers" && parts[2] is "adapter" or "lora";
    }

    /// <summary>
    /// The names of a model's per-instance parameters (adapters, LoRA pairs, and the norms of instances with own
    /// norms): what "train adapters only" hands to the optimizer.
    /// </summary>
    public static bool IsPerInstance(string parameterName, IReadOnlyList<TransformerLayerSpec> layers)
    {
        var parts = parameterName.Split('.');
        if (parts.Length < 3 || parts[0] != "layers" || !parts[1].StartsWith('L')) return false;
        if (parts[2] is "adapter" or "lora") return true;
        if (!int.TryParse(parts[1].AsSpan(1), out int id)) return false;
        var spec = layers.FirstOrDefault(l => l.Id == id);
        return spec?.Adapter is { OwnNorms: true } && parts[2].StartsWith("norm", StringComparison.Ordinal);
    }
}
