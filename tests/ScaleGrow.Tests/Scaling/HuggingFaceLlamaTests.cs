using System.Text;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Scaling;
using ScaleGrow.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Scaling;

public sealed class HuggingFaceLlamaTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scalegrow-hf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
         "rope_theta": 300.0, "vocab_size": 260, "tie_word_embeddings": false, "max_position_embeddings": 32,
         "hidden_act": "silu", "bos_token_id": 258, "eos_token_id": [259], "rope_scaling": null,
         "torch_dtype": "bfloat16"}
        """;

    /// <summary>Random Llama weights under Hugging Face names, some as BF16 and F16 like real checkpoints.</summary>
    private static Dictionary<string, Tensor> HuggingFaceTensors()
    {
        torch.manual_seed(21);
        var t = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["model.embed_tokens.weight"] = torch.randn(260, 16).to_type(ScalarType.BFloat16),
            ["model.norm.weight"] = torch.rand(16) + 0.5,
            ["lm_head.weight"] = torch.randn(260, 16) * 0.3,
        };
        for (int i = 0; i < 2; i++)
        {
            string p = $"model.layers.{i}.";
            t[p + "input_layernorm.weight"] = torch.rand(16) + 0.5;
            t[p + "post_attention_layernorm.weight"] = (torch.rand(16) + 0.5).to_type(ScalarType.Float16);
            t[p + "self_attn.q_proj.weight"] = torch.randn(16, 16) * 0.3;
            t[p + "self_attn.k_proj.weight"] = torch.randn(8, 16) * 0.3;
            t[p + "self_attn.v_proj.weight"] = (torch.randn(8, 16) * 0.3).to_type(ScalarType.BFloat16);
            t[p + "self_attn.o_proj.weight"] = torch.randn(16, 16) * 0.3;
            t[p + "mlp.gate_proj.weight"] = (torch.randn(24, 16) * 0.3).to_type(ScalarType.Float16);
            t[p + "mlp.up_proj.weight"] = torch.randn(24, 16) * 0.3;
            t[p + "mlp.down_proj.weight"] = torch.randn(16, 24) * 0.3;
        }
        return t;
    }

    /// <summary>Writes config, two shards and their index, and a tiktoken-format tokenizer.model.</summary>
    private void WriteCheckpoint(Dictionary<string, Tensor> tensors, string? index = null)
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), Config);
        var first = tensors.Where(kv => kv.Key.StartsWith("model.layers.0.") || kv.Key == "model.embed_tokens.weight")
            .ToDictionary();
        var second = tensors.Where(kv => !first.ContainsKey(kv.Key)).ToDictionary();
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        using (var f = File.Create(Path.Combine(_dir, "model-00001-of-00002.safetensors")))
            SafeTensorsWriter.Write(f, first, meta);
        using (var f = File.Create(Path.Combine(_dir, "model-00002-of-00002.safetensors")))
            SafeTensorsWriter.Write(f, second, meta);
        index ??= "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {" + string.Join(", ",
            first.Keys.Select(k => $"\"{k}\": \"model-00001-of-00002.safetensors\"").Concat(
                second.Keys.Select(k => $"\"{k}\": \"model-00002-of-00002.safetensors\""))) + "}}";
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), index);
        var ranks = new StringBuilder();
        for (int b = 0; b < 256; b++) ranks.Append($"{Convert.ToBase64String([(byte)b])} {b}\n");
        ranks.Append($"{Convert.ToBase64String("ab"u8.ToArray())} 256\n");
        ranks.Append($"{Convert.ToBase64String(" ab"u8.ToArray())} 257\n");
        File.WriteAllText(Path.Combine(_dir, "tokenizer.model"), ranks.ToString());
    }

    private static Tensor Ids() => torch.tensor(new long[,] { { 258, 3, 97, 256, 40, 12, 7, 257, 9 } });

    [Fact]
    public void ImportsAShardedCheckpointWhoseForwardMatchesTheWrittenOutLlamaComputation()
    {
        var tensors = HuggingFaceTensors();
        WriteCheckpoint(tensors);
        var (model, tokenizer) = HuggingFaceLlama.Import(_dir);
        using var _ = model;
        Assert.Equal(2, model.Spec.KvHeads);
        Assert.Equal(259, model.Spec.EosTokenId);
        Assert.Equal(300, model.Spec.RopeTheta);

        var f32 = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32));
        var expected = LlamaReference.Forward(f32, model.Spec, 2, Ids());
        using var noGrad = torch.no_grad();
        Assert.True((model.forward(Ids()) - expected).abs().max().item<float>() < 1e-4);

        Assert.NotNull(tokenizer);
        Assert.Equal(HuggingFaceTokenizer.Tiktoken, tokenizer!.Format);
        Assert.Equal(new[] { 256, 257, 99 }, tokenizer.Encode("ab abc"));
    }

    [Fact]
    public void ExportAndReimportIsBitExactSingleFileOrSharded()
    {
        WriteCheckpoint(HuggingFaceTensors());
        var (model, tokenizer) = HuggingFaceLlama.Import(_dir);
        using var _ = model;
        foreach (long shard in new[] { 1L << 30, 4_000 })
        {
            string outDir = Path.Combine(_dir, $"export-{shard}");
            var files = HuggingFaceLlama.Export(model, outDir, tokenizer, maxShardBytes: shard);
            Assert.Equal(shard > 4_000, files.Contains("model.safetensors"));
            Assert.Equal(shard <= 4_000, files.Contains("model.safetensors.index.json"));
            Assert.Contains("tokenizer.model", files);
            var (again, tokenizerAgain) = HuggingFaceLlama.Import(outDir);
            using var __ = again;
            Assert.Equal(model.Spec, again.Spec with { Layers = model.Spec.Layers });
            var a = model.state_dict();
            foreach (var (name, t) in again.state_dict())
                Assert.True(a[name].eq(t).all().item<bool>(), $"{name} changed in the round trip");
            Assert.Equal(tokenizer!.Bytes, tokenizerAgain!.Bytes);
        }
    }

    [Theory]
    [InlineData(AdapterKind.Lora)]
    [InlineData(AdapterKind.ParallelBottleneck)]
    public void ExportedScaleNetModelRunsAsAPlainLlamaWithEveryInstanceWritten(AdapterKind adapter)
    {
        torch.manual_seed(5);
        using var pretrained = new DecoderModel(DecoderModelTests.Tiny(2));
        DecoderModelTests.Randomize(pretrained);
        var (expanded, _) = ScaleNetExpander.Expand(pretrained,
            new ScaleNetOptions { Adapter = adapter, Rank = 2, OwnNorms = true }, 1);
        if (adapter == AdapterKind.Lora)
            using (torch.no_grad())
                foreach (var (name, p) in expanded.Module.named_parameters().Where(p => p.name.EndsWith(".b")))
                    p.normal_(0, 0.2); // trained LoRA: merged into each instance's copy
        HuggingFaceLlama.Export((DecoderModel)expanded, _dir);
        var (plain, _) = HuggingFaceLlama.Import(_dir);
        using var __ = plain;
        Assert.Equal(4, plain.Spec.Layers.Count);
        Assert.All(plain.Spec.Layers, l => Assert.Null(l.SharesWith));
        var ids = torch.randint(0, 23, [2, 7], dtype: ScalarType.Int64);
        using var noGrad = torch.no_grad();
        Assert.True((plain.forward(ids) - expanded.Module.forward(ids)).abs().max().item<float>() < 1e-4);

        if (adapter == AdapterKind.ParallelBottleneck)
        {
            expanded.Module.named_parameters().First(p => p.name.EndsWith("adapter.mlp.up.weight")).parameter.add_(0.1);
            var e = Assert.Throws<InvalidSpecException>(() => HuggingFaceLlama.Export((DecoderModel)expanded, _dir));
            Assert.Contains("trained parallel adapter", e.Message);
        }
    }

    [Fact]
    public void MalformedCheckpointsAreRejectedWithOneLineNamingTheProblem()
    {
        var tensors = HuggingFaceTensors();
        tensors.Remove("model.layers.1.mlp.up_proj.weight");
        WriteCheckpoint(tensors);
        var e = Assert.Throws<CheckpointFormatException>(() => HuggingFaceLlama.Import(_dir));
        Assert.Contains("'model.layers.1.mlp.up_proj.weight' required by config.json is missing", e.Message);

        WriteCheckpoint(HuggingFaceTensors(),
            "{\"weight_map\": {\"model.norm.weight\": \"../model-00002-of-00002.safetensors\"}}");
        Assert.Contains("outside the folder",
            Assert.Throws<DataFormatException>(() => HuggingFaceLlama.Import(_dir)).Message);

        var bad = HuggingFaceTensors();
        bad["model.layers.0.self_attn.k_proj.weight"] = torch.randn(16, 16);
        WriteCheckpoint(bad);
        Assert.Contains("has shape [16,16], config.json implies [8,16]",
            Assert.Throws<CheckpointFormatException>(() => HuggingFaceLlama.Import(_dir)).Message);

        var yarn = Config.Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\"}");
        Assert.Contains("rope_scaling type 'yarn' is not supported",
            Assert.Throws<DataFormatException>(() => HuggingFaceLlama.SpecFromConfig(yarn, "config.json")).Message);
        Assert.Contains("needs 'hidden_size'", Assert.Throws<DataFormatException>(
            () => HuggingFaceLlama.SpecFromConfig("{\"num_attention_heads\": 2}", "config.json")).Message);
    }

    [Fact]
    public void Llama3RopeScalingFollowsTheReferenceFormula()
    {
        var spec = DecoderModelTests.Tiny() with
        {
            HeadDim = 64,
            Hidden = 256,
            RopeTheta = 500000,
            RopeScaling = new RopeScaling
            {
                Factor = 32, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositions = 8192,
            },
        };
        var scaled = RotaryEmbedding.InverseFrequencies(spec).data<float>().ToArray();
        var plain = RotaryEmbedding.InverseFrequencies(spec with { RopeScaling = null }).data<float>().ToArray();
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            double expected = wavelength < 8192 / 4.0 ? plain[i]
                : wavelength > 8192 ? plain[i] / 32
                : ((1 - (8192 / wavelength - 1) / 3) / 32 + (8192 / wavelength - 1) / 3) * plain[i];
            Assert.Equal(expected, scaled[i], 1e-6 * Math.Max(1, plain[i]));
        }
    }
}
