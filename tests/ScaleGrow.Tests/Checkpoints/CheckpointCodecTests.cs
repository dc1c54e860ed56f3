using ScaleGrow.Checkpoints;
using ScaleGrow.Training;
using TorchSharp;
using static ScaleGrow.Tests.Checkpoints.SafeTensorsTestFiles;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Checkpoints;

public class CheckpointCodecTests
{
    private const string Spec = """{"family":"vgg","stages":[2,2,2],"width":0.5}""";

    private static byte[] SaveModel(ModelCheckpoint checkpoint)
    {
        using var stream = new MemoryStream();
        CheckpointCodec.SaveModel(stream, checkpoint);
        return stream.ToArray();
    }

    private static byte[] SaveOptimizer(OptimizerCheckpoint checkpoint)
    {
        using var stream = new MemoryStream();
        CheckpointCodec.SaveOptimizer(stream, checkpoint);
        return stream.ToArray();
    }

    private static ModelCheckpoint LoadModel(byte[] file) => CheckpointCodec.LoadModel(new MemoryStream(file), Source);

    private static CheckpointFormatException ModelRejected(byte[] file, string expected)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => LoadModel(file));
        Assert.StartsWith(Source + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        return e;
    }

    private static Dictionary<string, Tensor> RandomWeights(int seed)
    {
        var random = new Random(seed);
        return new Dictionary<string, Tensor>
        {
            ["stem.conv.weight"] = RandomBits(random, ScalarType.Float32, 8, 3, 3, 3),
            ["stem.bn.weight"] = RandomBits(random, ScalarType.Float16, 8),
            ["stem.bn.bias"] = RandomBits(random, ScalarType.BFloat16, 8),
            ["stem.bn.num_batches_tracked"] = RandomBits(random, ScalarType.Int64),
            ["head.codes"] = RandomBits(random, ScalarType.Byte, 4, 16),
            ["head.special"] = SpecialFloats(),
            ["head.mask"] = RandomBits(random, ScalarType.Bool, 5),
            ["head.fc.weight"] = RandomBits(random, ScalarType.Float64, 10, 8),
        };
    }

    [Fact]
    public void ModelRoundTripIsBitExactWithSpecAndExtraMetadata()
    {
        using var scope = torch.NewDisposeScope();
        var weights = RandomWeights(seed: 5);
        var extra = new Dictionary<string, string> { ["scalegrow.overlap"] = """{"blocks.0":[3,1]}""" };

        var loaded = LoadModel(SaveModel(new ModelCheckpoint(Spec, weights) { Metadata = extra }));

        Assert.Equal(Spec, loaded.SpecJson);
        Assert.Equal(extra, loaded.Metadata);
        Assert.Equal(weights.Keys.Order(), loaded.Tensors.Keys.Order());
        foreach (var (name, tensor) in weights) AssertSameTensor(tensor, loaded.Tensors[name], name);
    }

    [Fact]
    public void OptimizerStateOfARealOptimizerRoundTripsBitExact()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var model = nn.Sequential(("blocks", nn.Linear(6, 5)), ("head", nn.Linear(5, 3)));
        using var optimizer = new NamedOptimizer(model.named_parameters(),
            new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 0.01 });
        for (int i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            model.forward(torch.randn(4, 6)).pow(2).mean().backward();
            optimizer.StepWith(0.01);
        }
        using var state = optimizer.Export();
        var checkpoint = new OptimizerCheckpoint(state.Scalars.ToJson(), state.Moments);

        var loaded = CheckpointCodec.LoadOptimizer(new MemoryStream(SaveOptimizer(checkpoint)), "optim.safetensors");

        Assert.Equal(checkpoint.StateJson, loaded.StateJson);
        Assert.Equal(3, OptimizerScalars.FromJson(loaded.StateJson, "optim").Step);
        Assert.Contains("blocks.weight::exp_avg_sq", loaded.Moments.Keys);
        Assert.Equal(state.Moments.Keys.Order(), loaded.Moments.Keys.Order());
        foreach (var (name, tensor) in state.Moments) AssertSameTensor(tensor, loaded.Moments[name], name);
    }

    [Fact]
    public void SavingIsDeterministicWhateverTheInsertionOrder()
    {
        using var scope = torch.NewDisposeScope();
        var weights = RandomWeights(seed: 6);
        weights["shared.alias"] = weights["stem.conv.weight"];
        var extra = new Dictionary<string, string> { ["z"] = "1", ["a"] = "2" };
        var first = SaveModel(new ModelCheckpoint(Spec, weights) { Metadata = extra });
        var reordered = new ModelCheckpoint(Spec, weights.Reverse().ToDictionary())
        { Metadata = extra.Reverse().ToDictionary() };
        Assert.Equal(first, SaveModel(new ModelCheckpoint(Spec, weights) { Metadata = extra }));
        Assert.Equal(first, SaveModel(reordered));
    }

    [Fact]
    public void SharedTensorIsStoredOnceAndRestoredAsOneObject()
    {
        using var scope = torch.NewDisposeScope();
        var shared = torch.randn(256, 256); // 256 KiB: dominates the file size
        var own = torch.randn(4);
        var single = SaveModel(new ModelCheckpoint(Spec, new Dictionary<string, Tensor>
        { ["layers.0.attn.weight"] = shared, ["layers.0.own"] = own }));
        var file = SaveModel(new ModelCheckpoint(Spec, new Dictionary<string, Tensor>
        {
            ["layers.0.attn.weight"] = shared, ["layers.0.own"] = own,
            ["layers.1.attn.weight"] = shared, ["layers.2.attn.weight"] = shared,
        }));
        Assert.True(file.Length - single.Length < 1024, $"{file.Length} vs {single.Length} bytes: data stored twice");

        var loaded = LoadModel(file);
        var a = loaded.Tensors["layers.0.attn.weight"];
        Assert.Same(a, loaded.Tensors["layers.1.attn.weight"]);
        Assert.Same(a, loaded.Tensors["layers.2.attn.weight"]);
        Assert.NotSame(a, loaded.Tensors["layers.0.own"]);
        AssertSameTensor(shared, a, "shared");
        a.add_(1.0f);
        Assert.Equal(BytesOf(a), BytesOf(loaded.Tensors["layers.2.attn.weight"]));
        Assert.Empty(loaded.Metadata);
    }

    [Fact]
    public void TwoHandlesOnOneStorageAreStoredOnceUnderTheFirstName()
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(64, 64);
        var handle = weight.alias(); // another TorchSharp object on the same native tensor
        Assert.NotSame(weight, handle);
        var file = SaveModel(new ModelCheckpoint(Spec, new Dictionary<string, Tensor>
        { ["b.weight"] = weight, ["a.weight"] = handle }));
        var plain = SafeTensorsReader.Read(file, Source);
        Assert.Equal(["a.weight"], plain.Tensors.Keys);
        Assert.Equal("""{"b.weight":"a.weight"}""", plain.Metadata[CheckpointMetadata.AliasesKey]);
        var loaded = LoadModel(file);
        Assert.Same(loaded.Tensors["a.weight"], loaded.Tensors["b.weight"]);
    }

    [Fact]
    public void ViewsOfOneStorageWithDifferentShapesAreStoredSeparately()
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(8, 8);
        var loaded = LoadModel(SaveModel(new ModelCheckpoint(Spec, new Dictionary<string, Tensor>
        { ["w"] = weight, ["flat"] = weight.view(64), ["row"] = weight[1] })));
        Assert.NotSame(loaded.Tensors["w"], loaded.Tensors["flat"]);
        AssertSameTensor(weight[1], loaded.Tensors["row"], "row");
        AssertSameTensor(weight.view(64), loaded.Tensors["flat"], "flat");
    }

    [Fact]
    public void LoadingACheckpointOfTheWrongKindIsAClearError()
    {
        using var scope = torch.NewDisposeScope();
        var optimizerFile = SaveOptimizer(new OptimizerCheckpoint("""{"kind":"sgd"}""",
            new Dictionary<string, Tensor> { ["w::momentum_buffer"] = torch.zeros(2) }));
        ModelRejected(optimizerFile, "is a checkpoint of kind 'optimizer', expected kind 'model'");

        var modelFile = SaveModel(new ModelCheckpoint(Spec, new Dictionary<string, Tensor> { ["w"] = torch.zeros(2) }));
        var e = Assert.Throws<CheckpointFormatException>(() =>
            CheckpointCodec.LoadOptimizer(new MemoryStream(modelFile), "optim.safetensors"));
        Assert.Equal("optim.safetensors: is a checkpoint of kind 'model', expected kind 'optimizer'", e.Message);
    }

    [Fact]
    public void APlainSafetensorsFileIsNotACheckpoint()
    {
        using var scope = torch.NewDisposeScope();
        ModelRejected(Write(new Dictionary<string, Tensor> { ["w"] = torch.zeros(2) }),
            "is not a ScaleGrow checkpoint: __metadata__ has no 'scalegrow.kind'");
    }

    private static byte[] ModelFileWith(params (string Key, string? Value)[] overrides)
    {
        var metadata = new Dictionary<string, string>
        {
            [CheckpointMetadata.KindKey] = CheckpointMetadata.ModelKind,
            [CheckpointMetadata.FormatVersionKey] = CheckpointMetadata.FormatVersion,
            [CheckpointMetadata.SpecKey] = Spec,
        };
        foreach (var (key, value) in overrides)
            if (value is null) metadata.Remove(key);
            else metadata[key] = value;
        using var scope = torch.NewDisposeScope();
        return Write(new Dictionary<string, Tensor> { ["a"] = torch.zeros(2), ["b"] = torch.ones(2) }, metadata);
    }

    [Theory]
    [InlineData("scalegrow.format-version", "2", "format version '2' is not supported (this build reads version 1)")]
    [InlineData("scalegrow.format-version", null, "__metadata__ has no 'scalegrow.format-version'")]
    [InlineData("scalegrow.spec", null, "__metadata__ has no 'scalegrow.spec' (architecture spec)")]
    [InlineData("scalegrow.spec", "{\"family\":", "'scalegrow.spec' (architecture spec) is not valid JSON")]
    [InlineData("scalegrow.optimizer", "{}", "a 'model' checkpoint must not carry 'scalegrow.optimizer'")]
    [InlineData("scalegrow.aliases", """{"c":"missing"}""", "alias 'c' points to 'missing', which is not a tensor")]
    [InlineData("scalegrow.aliases", """{"a":"b"}""", "alias 'a' is also stored as a tensor")]
    [InlineData("scalegrow.aliases", """{"c":"b","d":"c"}""", "alias 'd' points to 'c', which is not a tensor")]
    [InlineData("scalegrow.aliases", """{"c":"b","c":"a"}""", "alias 'c' appears twice in scalegrow.aliases")]
    [InlineData("scalegrow.aliases", """{"":"b"}""", "an alias name is empty")]
    [InlineData("scalegrow.aliases", """{"c":1}""", "alias 'c' in scalegrow.aliases is not a string")]
    [InlineData("scalegrow.aliases", """["c"]""", "scalegrow.aliases is not a JSON object of names")]
    [InlineData("scalegrow.aliases", """{"c":"b""", "scalegrow.aliases is not valid JSON")]
    [InlineData("scalegrow.aliases", """{"c":{"d":"b"}}""", "alias 'c' in scalegrow.aliases is not a string")]
    public void MalformedCheckpointMetadataIsRejected(string key, string? value, string expected)
    {
        ModelRejected(ModelFileWith((key, value)), expected);
    }

    [Fact]
    public void MomentKeysMustNameAParameterAndASlot()
    {
        using var scope = torch.NewDisposeScope();
        var bad = new Dictionary<string, Tensor> { ["w.exp_avg"] = torch.zeros(2) };
        var e = Assert.Throws<ArgumentException>(() => SaveOptimizer(new OptimizerCheckpoint("{}", bad)));
        Assert.Contains("'w.exp_avg' is not named '{parameterName}::{slot}'", e.Message);

        var file = Write(bad, new Dictionary<string, string>
        {
            [CheckpointMetadata.KindKey] = CheckpointMetadata.OptimizerKind,
            [CheckpointMetadata.FormatVersionKey] = CheckpointMetadata.FormatVersion,
            [CheckpointMetadata.OptimizerStateKey] = "{}",
        });
        var loadError = Assert.Throws<CheckpointFormatException>(() =>
            CheckpointCodec.LoadOptimizer(new MemoryStream(file), "optim.safetensors"));
        Assert.Equal("optim.safetensors: tensor 'w.exp_avg' is not named '{parameterName}::{slot}'", loadError.Message);
    }

    [Theory]
    [InlineData("scalegrow.kind")]
    [InlineData("scalegrow.aliases")]
    [InlineData("scalegrow.spec")]
    public void ReservedMetadataKeysCannotBeSetAsExtras(string key)
    {
        using var scope = torch.NewDisposeScope();
        var checkpoint = new ModelCheckpoint(Spec, new Dictionary<string, Tensor> { ["w"] = torch.zeros(1) })
        { Metadata = new Dictionary<string, string> { [key] = "x" } };
        var e = Assert.Throws<ArgumentException>(() => SaveModel(checkpoint));
        Assert.Contains($"'{key}' is reserved", e.Message);
    }

    [Fact]
    public void SpecThatIsNotJsonIsRefusedOnSave()
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() =>
            SaveModel(new ModelCheckpoint("vgg-2-2-2", new Dictionary<string, Tensor>())));
        Assert.Contains("scalegrow.spec payload is not valid JSON", e.Message);
    }

    [Fact]
    public void ARejectedFileLeavesNoTensorsAlive()
    {
        var file = ModelFileWith((CheckpointMetadata.FormatVersionKey, "9"));
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        ModelRejected(file, "format version '9'");
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        var badBool = Raw("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},""" +
                          """ "b":{"dtype":"BOOL","shape":[1],"data_offsets":[4,5]}}""", [0, 0, 0, 0, 7]);
        Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(new MemoryStream(badBool), Source));
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
