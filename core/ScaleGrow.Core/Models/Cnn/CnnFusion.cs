using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Cnn;

/// <summary>
/// Structural re-parameterization of a whole CNN (thesis 3.3.1, 4.1): every multi-branch unit becomes one plain
/// convolution with bias whose kernel is the main (largest) kernel; BN folded, smaller kernels padded to the centre,
/// identity-BN and average pooling expressed as convolutions. Norms outside units, SE and the head are copied.
/// </summary>
public static class CnnFusion
{
    public static CnnModel Fuse(CnnModel model)
    {
        var fusedSpec = model.Spec with { Fused = true };
        var fused = ScaleGrow.ComputeDevice.Of(model).Place(new CnnModel(fusedSpec));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // Norms, SE modules and the classifier keep their names and shapes: copy them (buffers included).
        var source = model.state_dict();
        foreach (var (name, target) in fused.state_dict())
            if (source.TryGetValue(name, out var value)) target.copy_(value);
        var oldLayers = model.AllLayers().ToList();
        var newLayers = fused.AllLayers().ToList();
        for (int i = 0; i < oldLayers.Count; i++)
        {
            var oldUnits = oldLayers[i].Layer.Units;
            var newUnits = newLayers[i].Layer.Units;
            for (int u = 0; u < oldUnits.Count; u++)
            {
                var (w, b) = ((IReparameterizable)oldUnits[u]).EquivalentKernel();
                var target = (FusedConvUnit)newUnits[u];
                target.Conv.weight!.copy_(w);
                target.Conv.bias!.copy_(b);
            }
        }
        fused.eval();
        return fused;
    }

    /// <summary>
    /// Branch overlap per kernel position for every unit, keyed by the fused convolution's module name
    /// (<c>block0.L3.conv.fused</c>): the order the re-ordered GPTQ quantizes columns in (thesis 4.2.2).
    /// </summary>
    public static IReadOnlyDictionary<string, int[,]> OverlapMaps(CnnSpec spec)
    {
        var maps = new SortedDictionary<string, int[,]>(StringComparer.Ordinal);
        foreach (var (role, index, layer) in spec.AllLayers())
        {
            string path = LayerPath(role, index, layer);
            var geometry = CnnGeometry.UnitsOf(spec, role, index);
            for (int u = 0; u < geometry.Count; u++)
                maps[$"{path}.{geometry[u].Name}.fused"] = ConvUnit.CountOverlap(geometry[u], layer.Units[u]);
        }
        return maps;
    }

    /// <summary>Module path of a layer: <c>stem</c>, <c>block{b}.L{id}</c> or <c>down{d}</c>.</summary>
    public static string LayerPath(LayerRole role, int index, LayerSpec layer) => role switch
    {
        LayerRole.Stem => "stem",
        LayerRole.Block => $"block{index}.L{layer.Id}",
        _ => $"down{index}",
    };
}
