using Microsoft.DurableTask.Client;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data.Text;
using ScaleGrow.Models;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Orchestration;
using ScaleGrow.Quantization;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;
using ScaleGrow.Training;
using TorchSharp;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// ScaleNet on a language model through the real orchestration (issue 8's <c>scalenet-lm</c> path): a decoder is
/// pretrained on a text file the test writes, expanded 2× deeper with shared layers and adapters, trained on,
/// evaluated by perplexity and quantized; the checkpoints carry their tokenizer and data spec, so the model
/// re-evaluates to the run's perplexity with nothing else.
/// </summary>
public class LanguageModelRunTests
{
    /// <summary>Documents of a small grammar: predictable enough that a tiny decoder beats the uniform guess fast.</summary>
    private static string WriteStories(string dir, int documents = 240)
    {
        string[] who = ["the cat", "a dog", "the old sailor", "my neighbour", "a little bird"];
        string[] did = ["sat on", "looked at", "walked past", "sang to", "slept under"];
        string[] what = ["the mat", "a tree", "the harbour", "the moon", "an open window"];
        var random = new Random(11);
        var text = new System.Text.StringBuilder();
        for (int d = 0; d < documents; d++)
        {
            int sentences = 2 + random.Next(3);
            for (int s = 0; s < sentences; s++)
                text.Append($"{who[random.Next(who.Length)]} {did[random.Next(did.Length)]} " +
                            $"{what[random.Next(what.Length)]}.").Append(s + 1 < sentences ? ' ' : '\n');
            text.Append('\n'); // a blank line ends the document
        }
        var path = Path.Combine(dir, "stories.txt");
        File.WriteAllText(path, text.ToString());
        return path;
    }

    private static RunSpec Spec(string textFile) => new()
    {
        Kind = RunKind.Scale, Seed = 5, Epochs = 2, MeasureLatency = false,
        TextData = new TextDatasetSpec(Name: TextDatasetSpec.TextFile, Path: textFile, VocabSize: 80,
            SequenceLength: 16, Task: TextDatasetSpec.LanguageModel),
        Model = new ModelRequest { Family = "decoder", Layers = 2, Heads = 2, HeadDim = 8, KvHeads = 1, MlpRatio = 2 },
        Training = new TrainingOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 5e-3, BatchSize = 16, EvalBatchSize = 16,
        },
        Scale = new ScaleRunOptions { PretrainEpochs = 3 },
        Quantization = new QuantizationOptions { Bits = 4 },
    };

    [Fact]
    public async Task AScaleNetLanguageModelRunPretrainsExpandsSharesLayersAndReportsPerplexity()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-lm-");
        try
        {
            var store = new LocalFolderArtifactStore(Path.Combine(dir.FullName, "store"));
            await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
            var runs = new RunsService(engine.Client, store);
            string runId = await runs.StartAsync(Spec(WriteStories(dir.FullName)), "lm-run");
            var (metadata, statuses) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
            var summary = metadata.ReadOutputAs<RunSummary>()!;
            Assert.Equal("Llama-D4W16", summary.Arch);
            Assert.Contains(statuses, s => s.Arch == "Llama-D2W16");
            Assert.Equal(5, summary.Epochs); // three before the expansion, two after

            var e = summary.Evaluation;
            Assert.NotNull(e.Perplexity);
            Assert.Equal(Math.Exp(e.Loss), e.Perplexity!.Value, 6);
            var report = System.Text.Json.Nodes.JsonNode.Parse(await store.ReadAllBytesAsync(summary.Report))!;
            Assert.Equal("Llama-D4W16", (string?)report["finalArch"]);
            Assert.Equal(e.Perplexity!.Value, (double)report["perplexity"]!, 9);
            var journal = await OrchestrationTestKit.JournalAsync(store, runId);
            var expand = Assert.Single(journal, j => (string?)j["kind"] == "expand");
            // The phase after the expansion has its own cosine schedule: it decays to the minimum (0) by its end.
            var epochs = journal.Where(j => (string?)j["kind"] == "epoch").ToList();
            Assert.Equal(2.5e-3, (double)epochs[3]["learningRate"]!, 6); // half-way through the 2-epoch phase
            Assert.Equal(0, (double)epochs[4]["learningRate"]!, 9);
            long before = (long)expand["parametersBefore"]!, after = (long)expand["parametersAfter"]!;
            var (model, meta) = ModelIO.LoadModel(await store.ReadAllBytesAsync(summary.Model), summary.Model);
            var deep = (DecoderSpec)model.Spec;
            long unshared = ModelStats.Of(DecoderSpec.Create(deep.VocabSize, deep.Hidden, 4, deep.Heads, deep.KvHeads,
                deep.Intermediate, deep.TieEmbeddings, deep.MaxPositions)).Parameters;
            Assert.True(after > before && after < unshared,
                $"{before} -> {after} (a D4 without sharing: {unshared}): shared layers add only adapters");

            var tokenizer = TextTokenizer.Load(meta[TextTokenizer.MetadataKey]);
            // `scalegrow eval --choices` encodes questions with the WordPiece tokenizer the checkpoint carries.
            var encode = ScaleGrow.Scaling.MultipleChoiceEvaluator.EncoderFrom(meta, summary.Model);
            Assert.Equal(tokenizer.EncodePieces("the cat sat on the mat."), encode("the cat sat on the mat."));
            Assert.Equal(tokenizer.VocabSize, ((DecoderSpec)model.Spec).VocabSize);
            Assert.True(e.Perplexity < tokenizer.VocabSize / 4.0,
                $"perplexity {e.Perplexity:0.0} vs {tokenizer.VocabSize} tokens: the model learned the grammar");
            Assert.Equal(after, ModelStats.CountParameters(model.Module));

            // What `scalegrow eval --model` does: data and tokenizer from the checkpoint alone.
            var data = TextRunData.ForCheckpoint(meta, null, summary.Model);
            Assert.True(data.IsLanguageModel);
            var again = Evaluation.Evaluate(model, data, 16, measureLatency: false, default);
            Assert.Equal(e.Samples, again.Samples);
            Assert.Equal(e.Perplexity!.Value, again.Perplexity!.Value, 4);

            // The quantized model stores each shared weight once and keeps the sharing when loaded.
            var q = summary.Quantized!;
            Assert.Equal(("rtn", 4), (q.Method, q.Bits)); // text: no image calibration, so round-to-nearest
            var qBytes = await store.ReadAllBytesAsync(q.Model);
            var info = QuantizedCheckpoint.Load(qBytes, q.Model);
            int uniqueLinears = model.Module.named_modules().Select(m => m.module)
                .OfType<TorchSharp.Modules.Linear>()
                .Select(l => TensorAliases.StorageKey(l.weight!)).Distinct().Count();
            Assert.Equal(uniqueLinears, info.Info.Layers.Count);
            Assert.Equal(after, ModelStats.CountParameters(info.Model.Module));
            var quantized = Evaluation.Evaluate(info.Model, data, 16, measureLatency: false, default);
            Assert.True(quantized.Perplexity < e.Perplexity * 1.5,
                $"4-bit perplexity {quantized.Perplexity:0.00} vs {e.Perplexity:0.00}");
            info.Model.Module.Dispose();
            model.Module.Dispose();
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task WithTrainAdaptersOnlyTheSharedWeightsStayAsExpandedAndOnlyPerInstanceParametersTrain()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-lm-");
        try
        {
            var store = new LocalFolderArtifactStore(Path.Combine(dir.FullName, "store"));
            await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
            var runs = new RunsService(engine.Client, store);
            var spec = Spec(WriteStories(dir.FullName, documents: 120)) with
            {
                Epochs = 1,
                Quantization = null,
                Scale = new ScaleRunOptions
                {
                    PretrainEpochs = 1,
                    Expansion = new ScaleGrow.Scaling.ScaleNetOptions { TrainAdaptersOnly = true },
                },
            };
            string runId = await runs.StartAsync(spec, "lm-adapters");
            var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
            var summary = metadata.ReadOutputAs<RunSummary>()!;
            var journal = await OrchestrationTestKit.JournalAsync(store, runId);
            int step = (int)Assert.Single(journal, j => (string?)j["kind"] == "expand")["step"]!;
            string expandedPath = RunPaths.StepModel(runId, step);
            var (expanded, _) = ModelIO.LoadModel(await store.ReadAllBytesAsync(expandedPath), expandedPath);
            var (trained, _) = ModelIO.LoadModel(await store.ReadAllBytesAsync(summary.Model), summary.Model);
            var before = expanded.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            int adapters = 0, shared = 0;
            foreach (var (name, p) in trained.Module.named_parameters())
            {
                bool same = p.eq(before[name]).all().item<bool>();
                if (ScaleGrow.Models.Adapters.LayerInstances.IsAdapterParameter(name))
                {
                    adapters++;
                    if (name.Contains(".up.")) Assert.False(same, $"{name}: the adapter did not train");
                }
                else
                {
                    shared++;
                    Assert.True(same, $"{name} changed, but only adapters were to train");
                }
            }
            Assert.True(adapters > 0 && shared > 0, $"{adapters} adapter and {shared} shared tensors");
            expanded.Module.Dispose();
            trained.Module.Dispose();
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void TrainAdaptersOnlyWithNothingPerInstanceIsRefusedBeforeTheRunStarts()
    {
        var spec = Spec("unused.txt") with
        {
            Scale = new ScaleRunOptions
            {
                PretrainEpochs = 1,
                Expansion = new ScaleGrow.Scaling.ScaleNetOptions
                {
                    TrainAdaptersOnly = true, Adapter = ScaleGrow.Models.Adapters.AdapterKind.None,
                },
            },
        };
        var e = Assert.Throws<InvalidSpecException>(() => spec.Validate());
        Assert.Contains("trainAdaptersOnly needs per-instance parameters", e.Message);
    }

    [Fact]
    public void TrainingWindowsReplayPerEpochAndDifferBetweenEpochs()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-lm-");
        try
        {
            var spec = Spec(WriteStories(dir.FullName)).TextData!;
            var data = new LanguageModelRunData(LanguageModelDataLoader.Load(spec));
            Assert.Equal(data.Splits.Train.Count / (16 * 16), data.TrainBatchCount(16));
            long[] First(int epoch)
            {
                using var scope = torch.NewDisposeScope();
                var (x, y) = data.TrainEpoch(16, 5, epoch).First();
                Assert.Equal(new long[] { 16, 16 }, x.shape);
                Assert.True(x[.., 1..].eq(y[.., ..^1]).all().item<bool>(), "targets are the inputs shifted by one");
                return x.data<long>().ToArray();
            }
            Assert.Equal(First(0), First(0));
            Assert.NotEqual(First(0), First(1));
            var (train, validation, test) = data.Splits.Documents;
            Assert.Equal(240, train + validation + test);
            Assert.Equal((24, 24), (validation, test));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void PlainTextIsSplitIntoDocumentsAtBlankLinesAndBadFilesAreNamed()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-lm-");
        try
        {
            var path = Path.Combine(dir.FullName, "t.txt");
            File.WriteAllText(path, "\uFEFFfirst line\r\nstill first\n\n\n second \n\nthird\n");
            Assert.Equal(["first line\nstill first", " second", "third"], PlainTextDocuments.Read(path));

            File.WriteAllText(path, "one\n\ntwo\n");
            var few = Assert.Throws<DataFormatException>(() => PlainTextDocuments.Read(path));
            Assert.Contains("2 documents", few.Message);

            File.WriteAllBytes(path, [.. "ok\n\nfine\n"u8, 0xC3, 0x28, (byte)'\n']);
            var bad = Assert.Throws<DataFormatException>(() => PlainTextDocuments.Read(path));
            Assert.Equal($"{path}:4: not valid UTF-8", bad.Message);

            var missing = Assert.Throws<DataFormatException>(() => PlainTextDocuments.Read(path + ".nope"));
            Assert.EndsWith("file not found", missing.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("decoder", null, "needs language-model textData")]
    [InlineData("decoder", TextDatasetSpec.Classification, "text classification needs a text model (family bert)")]
    [InlineData("bert", TextDatasetSpec.LanguageModel, "language-model text data needs a decoder")]
    public void DecoderAndLanguageModelDataOnlyGoTogether(string family, string? task, string error)
    {
        var spec = new RunSpec
        {
            Kind = RunKind.Train,
            TextData = task is null ? null : new TextDatasetSpec(Task: task),
            Model = new ModelRequest { Family = family },
        };
        Assert.Contains(error, Assert.Throws<InvalidSpecException>(spec.Validate).Message);
    }

    [Fact]
    public void DecodersAreNotGrownAndTextFilesAreForLanguageModels()
    {
        var grow = Presets.Get("scalenet-lm").Spec with { Kind = RunKind.Grow };
        Assert.Contains("not grown", Assert.Throws<InvalidSpecException>(grow.Validate).Message);
        var classify = new TextDatasetSpec(Name: TextDatasetSpec.TextFile, Path: "x.txt");
        Assert.Contains("set task language-model", Assert.Throws<InvalidSpecException>(classify.Validate).Message);
        var noHeldOut = new TextDatasetSpec(Task: TextDatasetSpec.LanguageModel, TestFraction: 0);
        Assert.Contains("testFraction > 0", Assert.Throws<InvalidSpecException>(noHeldOut.Validate).Message);
        Presets.Get("scalenet-lm").Spec.Validate();
    }
}
