using System.Text.Json.Serialization;

namespace ScaleGrow.Models.Cnn;

/// <summary>The four CNN families of the thesis (table 3-1).</summary>
public enum CnnFamily
{
    [JsonStringEnumMemberName("vgg")] Vgg,
    [JsonStringEnumMemberName("resnet")] ResNet,
    [JsonStringEnumMemberName("bottleneck")] Bottleneck,
    [JsonStringEnumMemberName("mbv3")] MobileNetV3,
}

/// <summary>
/// A growable CNN (thesis 3.3.1, table 3-1): a stem, blocks separated by down-sampling layers, and a head. Blocks
/// hold layers; a layer holds Conv-BN units; a unit holds parallel re-parameterizable branches whose outputs are
/// summed (the first branch is the unit's main Conv-BN). The seed model has empty blocks.
/// Layers and branches carry creation ids so parameter names never change when neighbours are inserted.
/// </summary>
public sealed record CnnSpec : ArchitectureSpec
{
    public required CnnFamily Family { get; init; }

    public int InputChannels { get; set; } = 1;

    /// <summary>Input height = width in pixels (28 for Fashion-MNIST, 32 for CIFAR).</summary>
    public int ImageSize { get; set; } = 28;

    /// <summary>Base width of each block (thesis: [64, 96, 128], MobileNetV3 [32, 64, 96]).</summary>
    public required int[] StageWidths { get; init; }

    public required LayerSpec Stem { get; init; }

    /// <summary>One per stage width.</summary>
    public required IReadOnlyList<BlockSpec> Blocks { get; init; }

    /// <summary>One between each pair of consecutive blocks: BN(width_i) then a stride-2 Conv-BN to width_i+1.</summary>
    public required IReadOnlyList<LayerSpec> Downsamples { get; init; }

    /// <summary>Next free creation id for layers and branches.</summary>
    public int NextId { get; init; }

    /// <summary>True after structural re-parameterization: every unit is one plain convolution with bias.</summary>
    public bool Fused { get; init; }

    /// <summary>Channel reduction of Bottleneck layers (table 3-1: 64 → 16).</summary>
    public int BottleneckRatio { get; set; } = 4;

    /// <summary>Expansion of MobileNetV3 layers (table 3-1: 32 → 128).</summary>
    public int ExpandRatio { get; set; } = 4;

    [JsonIgnore]
    public override string ArchString =>
        FamilyName(Family) + "-" + string.Join("-", Blocks.Select(b => b.Layers.Count));

    /// <summary>The name used in architecture strings (<c>VGG</c>, <c>ResNet</c>, <c>Bottleneck</c>, <c>MobileNetV3</c>).</summary>
    public static string FamilyName(CnnFamily family) => family switch
    {
        CnnFamily.Vgg => "VGG",
        CnnFamily.ResNet => "ResNet",
        CnnFamily.Bottleneck => "Bottleneck",
        CnnFamily.MobileNetV3 => "MobileNetV3",
        _ => throw new InvalidSpecException($"unknown CNN family {family}"),
    };

    /// <summary>Parses a family name as users write it (vgg, resnet, bottleneck, bottleneck-resnet, mbv3, mobilenetv3).</summary>
    public static CnnFamily ParseFamily(string name) => name.Trim().ToLowerInvariant() switch
    {
        "vgg" => CnnFamily.Vgg,
        "resnet" or "basic-resnet" => CnnFamily.ResNet,
        "bottleneck" or "bottleneck-resnet" or "resnet-bottleneck" => CnnFamily.Bottleneck,
        "mbv3" or "mobilenetv3" or "mobilenet-v3" => CnnFamily.MobileNetV3,
        _ => throw new InvalidSpecException(
            $"unknown CNN family '{name}' (expected vgg, resnet, bottleneck or mbv3)"),
    };

    /// <summary>Every layer in forward order with where it sits (stem, blocks, down-sampling layers).</summary>
    public IEnumerable<(LayerRole Role, int Index, LayerSpec Layer)> AllLayers()
    {
        yield return (LayerRole.Stem, 0, Stem);
        for (int b = 0; b < Blocks.Count; b++)
        {
            foreach (var layer in Blocks[b].Layers) yield return (LayerRole.Block, b, layer);
            if (b < Downsamples.Count) yield return (LayerRole.Downsample, b, Downsamples[b]);
        }
    }

    public override void Validate()
    {
        string where = $"{FamilyName(Family)} spec";
        if (NumClasses is < 2 or > MaxClasses)
            throw new InvalidSpecException($"{where}: numClasses must be in 2..{MaxClasses}, got {NumClasses}");
        if (InputChannels is < 1 or > MaxInputChannels)
            throw new InvalidSpecException(
                $"{where}: inputChannels must be in 1..{MaxInputChannels}, got {InputChannels}");
        if (ImageSize is < 4 or > MaxImageSize)
            throw new InvalidSpecException($"{where}: imageSize must be in 4..{MaxImageSize}, got {ImageSize}");
        if (BottleneckRatio is < 1 or > 64 || ExpandRatio is < 1 or > 64)
            throw new InvalidSpecException(
                $"{where}: bottleneckRatio and expandRatio must be in 1..64, got {BottleneckRatio} and {ExpandRatio}");
        if (StageWidths is null || StageWidths.Length < 1 || StageWidths.Length > 8)
            throw new InvalidSpecException($"{where}: stageWidths must hold 1 to 8 widths");
        if (StageWidths.Any(w => w < 1 || w > 8192))
            throw new InvalidSpecException($"{where}: stage widths must be in 1..8192");
        if (Family == CnnFamily.Bottleneck && StageWidths.Any(w => w % BottleneckRatio != 0))
            throw new InvalidSpecException($"{where}: bottleneck stage widths must be multiples of {BottleneckRatio}");
        if (Blocks is null || Blocks.Count != StageWidths.Length)
            throw new InvalidSpecException(
                $"{where}: {Blocks?.Count ?? 0} blocks for {StageWidths.Length} stage widths");
        if (Downsamples is null || Downsamples.Count != StageWidths.Length - 1)
            throw new InvalidSpecException(
                $"{where}: expected {StageWidths.Length - 1} down-sampling layers, got {Downsamples?.Count ?? 0}");
        if (Stem is null) throw new InvalidSpecException($"{where}: stem is missing");
        var ids = new HashSet<int>();
        foreach (var (role, index, layer) in AllLayers())
        {
            string layerWhere = $"{where}: {role.ToString().ToLowerInvariant()} {index} layer {layer?.Id}";
            if (layer is null) throw new InvalidSpecException($"{where}: a layer is null");
            if (!ids.Add(layer.Id)) throw new InvalidSpecException($"{layerWhere}: duplicate id {layer.Id}");
            var geometry = CnnGeometry.UnitsOf(this, role, index);
            if (layer.Units is null || layer.Units.Count != geometry.Count)
                throw new InvalidSpecException(
                    $"{layerWhere}: expected units [{string.Join(", ", geometry.Select(g => g.Name))}]");
            for (int u = 0; u < geometry.Count; u++)
            {
                var unit = layer.Units[u];
                var g = geometry[u];
                if (unit is null || unit.Name != g.Name)
                    throw new InvalidSpecException($"{layerWhere}: unit {u} must be named '{g.Name}'");
                if (unit.Branches is null || unit.Branches.Count == 0)
                    throw new InvalidSpecException($"{layerWhere}.{unit.Name}: a unit needs at least its main branch");
                if (!unit.Branches[0].Kind.Equals(BranchKind.MainKind(g)))
                    throw new InvalidSpecException(
                        $"{layerWhere}.{unit.Name}: first branch must be the main {BranchKind.MainKind(g)}, " +
                        $"got {unit.Branches[0].Kind}");
                foreach (var branch in unit.Branches)
                {
                    if (branch is null) throw new InvalidSpecException($"{layerWhere}.{unit.Name}: null branch");
                    if (!ids.Add(branch.Id))
                        throw new InvalidSpecException($"{layerWhere}.{unit.Name}: duplicate id {branch.Id}");
                    if (!BranchKind.TryParse(branch.Kind, out var kind))
                        throw new InvalidSpecException(
                            $"{layerWhere}.{unit.Name}: unknown branch kind '{branch.Kind}' " +
                            $"(expected {string.Join(", ", BranchKind.All.Select(k => k.Name))})");
                    if (!kind.FitsIn(g))
                        throw new InvalidSpecException(
                            $"{layerWhere}.{unit.Name}: branch '{branch.Kind}' does not fit a " +
                            $"{g.KernelH}x{g.KernelW} {g.InChannels}->{g.OutChannels} unit");
                }
            }
        }
        if (ids.Count > 0 && NextId <= ids.Max())
            throw new InvalidSpecException($"{where}: nextId {NextId} must exceed every id in use ({ids.Max()})");
        if (SpatialSizeAfter(StageWidths.Length - 1) < 1)
            throw new InvalidSpecException($"{where}: {ImageSize}px is too small for {Downsamples.Count} down-samplings");
    }

    /// <summary>Feature map side length inside block <paramref name="block"/> (each down-sampling halves it, rounding up).</summary>
    public int SpatialSizeAfter(int block)
    {
        int s = ImageSize;
        for (int i = 0; i < block; i++) s = (s - 1) / 2 + 1;
        return s;
    }
}

/// <summary>Where a layer sits.</summary>
public enum LayerRole { Stem, Block, Downsample }

/// <summary>The layers of one block, in forward order.</summary>
public sealed record BlockSpec
{
    public required IReadOnlyList<LayerSpec> Layers { get; init; }
}

/// <summary>A layer (one row of table 3-1): its units in forward order.</summary>
public sealed record LayerSpec
{
    public required int Id { get; init; }
    public required IReadOnlyList<UnitSpec> Units { get; init; }
}

/// <summary>A Conv-BN unit and its parallel branches; the first is the main branch.</summary>
public sealed record UnitSpec
{
    public required string Name { get; init; }
    public required IReadOnlyList<BranchSpec> Branches { get; init; }
}

/// <summary>One branch of a unit: <c>conv{h}x{w}</c>, <c>bn</c> (identity + BN) or <c>avgpool</c> (+ BN).</summary>
public sealed record BranchSpec
{
    public required int Id { get; init; }
    public required string Kind { get; init; }
}
