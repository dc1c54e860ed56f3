using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
using TorchSharp;
using static ScaleGrow.Tests.Scaling.ScaleNetTestModels;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Scaling;

public class WeightSharingTests
{
    private static TransformerSpec SharedVit(AdapterSpec? adapter = null) => Vit(2) with
    {
        Layers =
        [
            new TransformerLayerSpec { Id = 0, Adapter = adapter },
            new TransformerLayerSpec { Id = 2, SharesWith = 1, Adapter = adapter },
            new TransformerLayerSpec { Id = 1, Adapter = adapter },
            new TransformerLayerSpec { Id = 3, SharesWith = 0, Adapter = adapter },
        ],
        NextId = 4,
    };

    [Fact]
    public void TorchSharpListsASharedParameterOnceUnderTheOwnersNameButStateDictUnderEveryName()
    {
        // What the whole design leans on (TorchSharp 0.107 Module.named_parameters dedupes by handle, keeping the
        // first registered name; state_dict adds every name).
        using var model = new TransformerModel(SharedVit());
        var named = model.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("layers.L1.attn.q.weight", named);
        Assert.DoesNotContain("layers.L2.attn.q.weight", named);
        Assert.DoesNotContain(named, n => n.StartsWith("layers.L3.", StringComparison.Ordinal));
        var state = model.state_dict();
        Assert.Same(state["layers.L1.attn.q.weight"], state["layers.L2.attn.q.weight"]);
        Assert.Same(state["layers.L0.norm2.weight"], state["layers.L3.norm2.weight"]);
        Assert.Equal(named.Count, model.parameters().Count());
    }

    [Fact]
    public void SharedInstancesHoldOneTensorWhoseGradientSumsTheGradientsOfEveryInstance()
    {
        torch.manual_seed(3);
        using var shared = new TransformerModel(SharedVit());
        Randomize(shared);
        // The same function with independent tensors: the owners' values copied into the instances.
        var copiesSpec = SharedVit() with
        {
            Layers = SharedVit().Layers.Select(l => l with { SharesWith = null }).ToArray(),
        };
        using var copies = new TransformerModel(copiesSpec);
        var source = shared.state_dict();
        using (torch.no_grad())
            foreach (var (name, t) in copies.state_dict())
                t.copy_(source[name]);
        var x = Images();
        shared.forward(x).square().sum().backward();
        copies.forward(x).square().sum().backward();

        var grads = copies.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, p) in shared.named_parameters().Where(p => p.name.StartsWith("layers.L1.attn.")
                                                                        || p.name.StartsWith("layers.L0.mlp.")))
        {
            string instance = name.Replace("layers.L1.", "layers.L2.").Replace("layers.L0.", "layers.L3.");
            var expected = grads[name] + grads[instance];
            Assert.True(MaxAbsDiff(p.grad!, expected) < 1e-5, $"{name}: gradient is not the sum over instances");
            Assert.True(grads[instance].abs().max().item<float>() > 0, $"{instance} got no gradient");
        }
        // One storage: an update through the owner is what the instance runs.
        using (torch.no_grad()) shared.state_dict()["layers.L1.attn.q.weight"].add_(1);
        Assert.Equal(TensorMemory.DataPointer(shared.state_dict()["layers.L1.attn.q.weight"]),
            TensorMemory.DataPointer(shared.state_dict()["layers.L2.attn.q.weight"]));
    }

    [Fact]
    public void NamedOptimizerStepsAParameterListedUnderTwoNamesOnceUnderTheFirstName()
    {
        using var model = new TransformerModel(SharedVit());
        var twice = model.named_parameters().Concat(
            model.named_parameters().Select(p => (p.name.Replace("layers.L1.", "layers.L2."), p.parameter)))
            .Select(p => (p.Item1, p.Item2)).ToList();
        using var optimizer = new NamedOptimizer(twice, new TrainingOptions { Momentum = 0, WeightDecay = 0 });
        Assert.Equal(model.named_parameters().Count(), optimizer.Parameters.Count);
        Assert.Contains(optimizer.Parameters, p => p.Name == "layers.L1.attn.q.weight");
        Assert.DoesNotContain(optimizer.Parameters, p => p.Name.StartsWith("layers.L2.", StringComparison.Ordinal));

        var before = model.state_dict()["layers.L1.attn.q.weight"].clone();
        model.forward(Images()).sum().backward();
        optimizer.StepWith(0.1);
        var after = model.state_dict()["layers.L1.attn.q.weight"];
        var grad = model.named_parameters().First(p => p.name == "layers.L1.attn.q.weight").parameter.grad!;
        Assert.True(MaxAbsDiff(after, before - 0.1 * grad) < 1e-6, "a shared parameter was stepped more than once");
    }

    [Fact]
    public void CheckpointStoresASharedTensorOnceAndRestoresItShared()
    {
        torch.manual_seed(4);
        var spec = SharedVit(new AdapterSpec { Kind = AdapterKind.Lora, Rank = 2, OwnNorms = true });
        using var model = new TransformerModel(spec);
        Randomize(model);
        var bytes = ModelIO.SaveModel(model);

        var file = SafeTensorsReader.Read(bytes, "model.safetensors");
        Assert.Contains("layers.L1.attn.q.weight", file.Tensors.Keys);
        Assert.DoesNotContain("layers.L2.attn.q.weight", file.Tensors.Keys);
        Assert.Contains("layers.L2.norm1.weight", file.Tensors.Keys); // own norms are the instance's own tensors
        Assert.Contains("\"layers.L2.attn.q.weight\":\"layers.L1.attn.q.weight\"",
            file.Metadata[CheckpointMetadata.AliasesKey]);
        long stored = file.Tensors.Values.Sum(t => t.numel());
        Assert.Equal(ModelStats.CountParameters(model), stored);

        var (loaded, _) = ModelIO.LoadModel(bytes, "model.safetensors");
        var state = loaded.Module.state_dict();
        Assert.Equal(TensorMemory.DataPointer(state["layers.L0.mlp.fc1.weight"]),
            TensorMemory.DataPointer(state["layers.L3.mlp.fc1.weight"]));
        var x = Images();
        model.eval();
        loaded.Module.eval();
        Assert.Equal(0, MaxAbsDiff(model.forward(x), loaded.Module.forward(x)));
    }

    [Fact]
    public void UniqueParameterCountFromTheSpecMatchesTheBuiltModel()
    {
        foreach (var adapter in new AdapterSpec?[]
                 {
                     null, new() { Kind = AdapterKind.ParallelBottleneck, Rank = 3 },
                     new() { Kind = AdapterKind.Lora, Rank = 2, Where = AdapterPlacement.Mlp, OwnNorms = true },
                     new() { Kind = AdapterKind.None, OwnNorms = true },
                 })
        {
            var spec = SharedVit(adapter);
            using var model = new TransformerModel(spec);
            Assert.Equal(ModelStats.CountParameters(model), ModelStats.Of(spec).Parameters);
        }
    }

    [Fact]
    public void SpecsWithSharingRoundTripThroughJsonAndBadSharingIsRejected()
    {
        var spec = SharedVit(new AdapterSpec { Kind = AdapterKind.Lora, Rank = 2, Where = AdapterPlacement.Attention });
        var json = spec.ToJson();
        Assert.Contains("\"sharesWith\":1", json);
        Assert.Contains("\"kind\":\"lora\"", json);
        var back = (TransformerSpec)ArchitectureSpec.FromJson(json);
        Assert.Equal(spec.Layers, back.Layers);
        Assert.DoesNotContain("sharesWith", Vit(2).ToJson());

        var chained = spec with
        {
            Layers = [.. spec.Layers, new TransformerLayerSpec { Id = 9, SharesWith = 2 }],
            NextId = 10,
        };
        var e = Assert.Throws<InvalidSpecException>(() => chained.Validate());
        Assert.Contains("L9 shares with L2", e.Message);
        var badRank = Vit(1) with
        {
            Layers =
            [
                new TransformerLayerSpec { Id = 0, Adapter = new AdapterSpec { Kind = AdapterKind.Lora, Rank = 0 } },
            ],
        };
        Assert.Contains("rank", Assert.Throws<InvalidSpecException>(() => badRank.Validate()).Message);
    }
}
