using ScaleGrow.Models.Cnn;

namespace ScaleGrow.Growth;

/// <summary>
/// The CNN growth operators as pure functions on specs (thesis 3.3.3): depth growth inserts one family-appropriate
/// layer (table 3-1) into a block; width growth adds re-parameterizable branches to units. Existing layers and
/// branches keep their ids — and therefore their parameter names.
/// </summary>
public static class CnnGrowthOperators
{
    /// <summary>Inserts a new single-branch layer at <paramref name="position"/> (0 = block start) of a block.</summary>
    public static (CnnSpec Spec, GrowthAction Action) InsertLayer(CnnSpec spec, int block, int position,
        string reason = "")
    {
        if (spec.Fused) throw new InvalidSpecException("depth growth: the model is already fused");
        if (block < 0 || block >= spec.Blocks.Count)
            throw new InvalidSpecException($"depth growth: block {block} does not exist ({spec.Blocks.Count} blocks)");
        var layers = spec.Blocks[block].Layers.ToList();
        if (position < 0 || position > layers.Count)
            throw new InvalidSpecException($"depth growth: position {position} outside block {block} (0..{layers.Count})");
        int nextId = spec.NextId;
        var layer = CnnSpecs.NewLayer(spec, LayerRole.Block, block, ref nextId);
        layers.Insert(position, layer);
        var blocks = spec.Blocks.ToArray();
        blocks[block] = new BlockSpec { Layers = layers };
        var grown = spec with { Blocks = blocks, NextId = nextId };
        grown.Validate();
        return (grown, new GrowthAction
        {
            Kind = GrowthKind.Depth, ArchBefore = spec.ArchString, ArchAfter = grown.ArchString, Block = block,
            Position = position, AfterLayerId = position == 0 ? null : layers[position - 1].Id, NewLayerId = layer.Id,
            Reason = reason,
        });
    }

    /// <summary>Adds one branch of the given kind to each (layer id, unit) listed.</summary>
    public static (CnnSpec Spec, GrowthAction Action) AddBranches(CnnSpec spec,
        IReadOnlyList<(int LayerId, string Unit, string Kind)> additions, string reason = "")
    {
        if (spec.Fused) throw new InvalidSpecException("width growth: the model is already fused");
        int nextId = spec.NextId;
        var added = new List<BranchAddition>();
        var byLayer = additions.GroupBy(a => a.LayerId).ToDictionary(g => g.Key, g => g.ToList());
        LayerSpec Grow(LayerRole role, int index, LayerSpec layer)
        {
            if (!byLayer.Remove(layer.Id, out var forLayer)) return layer;
            var geometry = CnnGeometry.UnitsOf(spec, role, index);
            var units = layer.Units.ToArray();
            foreach (var (_, unitName, kindName) in forLayer)
            {
                int u = Array.FindIndex(units, x => x.Name == unitName);
                if (u < 0) throw new InvalidSpecException($"width growth: layer {layer.Id} has no unit '{unitName}'");
                var kind = BranchKind.Parse(kindName);
                if (!kind.FitsIn(geometry[u]))
                    throw new InvalidSpecException(
                        $"width growth: branch '{kindName}' does not fit unit '{unitName}' of layer {layer.Id}");
                int id = nextId++;
                units[u] = units[u] with { Branches = [.. units[u].Branches, new BranchSpec { Id = id, Kind = kindName }] };
                added.Add(new BranchAddition(layer.Id, unitName, kindName, id));
            }
            return layer with { Units = units };
        }
        var stem = Grow(LayerRole.Stem, 0, spec.Stem);
        var blocks = spec.Blocks.Select((b, bi) => new BlockSpec
        { Layers = b.Layers.Select(l => Grow(LayerRole.Block, bi, l)).ToArray() }).ToArray();
        var downs = spec.Downsamples.Select((d, di) => Grow(LayerRole.Downsample, di, d)).ToArray();
        if (byLayer.Count > 0)
            throw new InvalidSpecException($"width growth: no layer with id {string.Join(", ", byLayer.Keys)}");
        var grown = spec with { Stem = stem, Blocks = blocks, Downsamples = downs, NextId = nextId };
        grown.Validate();
        return (grown, new GrowthAction
        {
            Kind = GrowthKind.Width, ArchBefore = spec.ArchString, ArchAfter = grown.ArchString, Branches = added,
            Reason = reason,
        });
    }
}
