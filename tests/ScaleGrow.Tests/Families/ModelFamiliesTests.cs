using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Families;
using ScaleGrow.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Families;

/// <summary>
/// The family registry (issue 19): one registration per kind and spec type, and a family registered from outside the
/// core — a throw-away one defined here — is built, counted and saved/loaded through the registry alone, with no
/// switch in core knowing it.
/// </summary>
public class ModelFamiliesTests
{
    [Fact]
    public void TheBuiltInFamiliesAreRegisteredOnceEach()
    {
        var kinds = ModelFamilies.All.Select(f => f.Kind).ToList();
        Assert.Contains("cnn", kinds);
        Assert.Contains("transformer", kinds);
        Assert.Contains("decoder", kinds);
        Assert.Equal(kinds.Count, kinds.Distinct().Count());
    }

    [Fact]
    public void RegisteringAKindTwiceThrowsAndKeepsTheFirst()
    {
        var first = ModelFamilies.ForKind("cnn");
        var e = Assert.Throws<InvalidOperationException>(() => ModelFamilies.Register(new CnnModelFamily()));
        Assert.Contains("'cnn' is already registered", e.Message);
        Assert.Same(first, ModelFamilies.ForKind("cnn"));
    }

    [Fact]
    public void RegisteringASpecTypeTwiceUnderAnotherKindThrows()
    {
        TinyFamily.EnsureRegistered();
        var e = Assert.Throws<InvalidOperationException>(() =>
            ModelFamilies.Register(new TinyFamily("tiny-test-alias")));
        Assert.Contains("spec type TinySpec is already registered", e.Message);
        Assert.Null(ModelFamilies.ForKind("tiny-test-alias"));
    }

    [Fact]
    public void AFamilyDefinedOutsideCoreIsBuiltCountedSavedAndLoadedThroughTheRegistry()
    {
        TinyFamily.EnsureRegistered();
        var spec = new TinySpec { NumClasses = 3, Width = 5 };
        using var model = (TinyModel)ModelFactory.Create(spec);
        var stats = ModelStats.Of(spec);
        Assert.Equal(5 * 3 + 3, stats.Parameters);
        Assert.Equal(ModelStats.CountParameters(model), stats.Parameters);
        Assert.Equal((long)(5 + 3) * 4, ModelMemory.Of(spec).ActivationBytesPerSample);
        Assert.Equal([5L], ScaleGrow.Runs.Evaluation.InputShape(spec));

        var bytes = ModelIO.SaveModel(model);
        var (loaded, _) = ModelIO.LoadModel(bytes, "tiny.safetensors");
        using var _ = loaded.Module;
        Assert.Equal(spec, loaded.Spec);
        Assert.IsType<TinyModel>(loaded);
        using var input = torch.ones(2, 5);
        using var expected = model.forward(input);
        using var actual = loaded.Module.forward(input);
        Assert.True(expected.equal(actual).all().item<bool>());
        Assert.Equal(spec, ArchitectureSpec.FromJson(spec.ToJson()));
    }

    /// <summary>A one-layer classifier: its spec is a width and a class count.</summary>
    private sealed record TinySpec : ArchitectureSpec
    {
        public required int Width { get; init; }
        public override string ArchString => $"Tiny-{Width}";

        public override void Validate()
        {
            if (Width is < 1 or > 64) throw new InvalidSpecException($"tiny: width must be in 1..64, got {Width}");
        }
    }

    private sealed class TinyModel : nn.Module<Tensor, Tensor>, IScaleGrowModel
    {
        private readonly TorchSharp.Modules.Linear head;

        public TinyModel(TinySpec spec) : base("tiny")
        {
            Spec = spec;
            head = nn.Linear(spec.Width, spec.NumClasses);
            RegisterComponents();
        }

        public ArchitectureSpec Spec { get; }
        public nn.Module<Tensor, Tensor> Module => this;
        public override Tensor forward(Tensor input) => head.forward(input); // (B, W) → (B, classes)
    }

    /// <summary>The throw-away family: JSON by hand (the spec is not one of ArchitectureSpec's declared types).
    /// </summary>
    private sealed class TinyFamily(string kind = TinyFamily.TinyKind) : IModelFamily
    {
        private const string TinyKind = "tiny-test";
        private static readonly Lazy<bool> Registration = new(() =>
        {
            ModelFamilies.Register(new TinyFamily());
            return true;
        });

        public static void EnsureRegistered() => _ = Registration.Value;

        public string Kind => kind;
        public Type SpecType => typeof(TinySpec);
        public Type ModelType => typeof(TinyModel);
        public bool IsLanguageModel => false;

        public string SpecToJson(ArchitectureSpec spec)
        {
            var tiny = (TinySpec)spec;
            return $"{{\"kind\":\"{Kind}\",\"numClasses\":{tiny.NumClasses},\"width\":{tiny.Width}}}";
        }

        public ArchitectureSpec? SpecFromJson(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            return new TinySpec
            {
                NumClasses = root.GetProperty("numClasses").GetInt32(), Width = root.GetProperty("width").GetInt32(),
            };
        }

        public IScaleGrowModel Build(ArchitectureSpec spec) => new TinyModel((TinySpec)spec);

        public ModelStats CountStats(ArchitectureSpec spec)
        {
            var tiny = (TinySpec)spec;
            long parameters = (long)tiny.Width * tiny.NumClasses + tiny.NumClasses;
            long flops = (long)tiny.Width * tiny.NumClasses;
            return new ModelStats(parameters, parameters, flops, flops,
                new Dictionary<string, long> { ["linear"] = flops });
        }

        public long ActivationsPerSample(ArchitectureSpec spec) => ((TinySpec)spec).Width + spec.NumClasses;
        public long[] InputShape(ArchitectureSpec spec) => [((TinySpec)spec).Width];
        public bool ReadsText(ArchitectureSpec spec) => false;

        // Fusion, overlap maps, branch lines and grown-tensor placement: the interface's branch-free defaults.
    }
}
