using Microsoft.DurableTask.Client;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data.Text;
using ScaleGrow.Growth;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;
using ScaleGrow.Training;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// A BERT-style growth run on a label&lt;TAB&gt;text file the test writes, through the real orchestration: the
/// checkpoints carry the WordPiece tokenizer and the text data spec, so evaluating the saved model later (as
/// <c>scalegrow eval</c> does) needs nothing else and gives the run's own test accuracy.
/// </summary>
public class TextRunTests
{
    internal static string WriteTopics(string dir)
    {
        // Three topics, each with its own words, mixed with shared filler: learnable, not trivial for a seed model.
        string[][] words =
        [
            ["ship", "sail", "harbour", "anchor", "wave", "crew"],
            ["bread", "oven", "flour", "butter", "baker", "crust"],
            ["star", "orbit", "planet", "comet", "moon", "rocket"],
        ];
        string[] filler = ["the", "a", "old", "new", "with", "and", "under", "over", "every", "little"];
        var random = new Random(7);
        var lines = new List<string>();
        for (int i = 0; i < 450; i++)
        {
            int label = i % 3;
            var text = Enumerable.Range(0, 8).Select(j => j % 3 == 0
                ? words[label][random.Next(words[label].Length)]
                : filler[random.Next(filler.Length)]);
            lines.Add($"topic{label}\t{string.Join(' ', text)}");
        }
        var path = Path.Combine(dir, "topics.tsv");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task TheGrownTextModelCarriesItsTokenizerAndEvaluatesTheSameFromItsCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-text-");
        try
        {
            var store = new LocalFolderArtifactStore(Path.Combine(dir.FullName, "store"));
            var spec = new RunSpec
            {
                Kind = RunKind.Grow, Seed = 3, MeasureLatency = false,
                TextData = new TextDatasetSpec(Name: TextDatasetSpec.LabelledText, Path: WriteTopics(dir.FullName),
                    VocabSize: 120, SequenceLength: 16),
                Model = new ModelRequest { Family = "bert", Layers = 1, Heads = 2, HeadDim = 8 },
                Training = new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 3e-3, BatchSize = 32 },
                Growth = new GrowthOptions
                {
                    IntervalEpochs = 1, MaxEpochs = 4, FineTuneEpochs = 2, Pattern = "wwd",
                    Stopping = new StoppingOptions { Auto = false },
                },
            };
            await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
            var runs = new RunsService(engine.Client, store);
            string runId = await runs.StartAsync(spec, "text-run");
            var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
            var summary = metadata.ReadOutputAs<RunSummary>()!;
            Assert.StartsWith("BERT-D2W32", summary.Arch); // two head growths (2 → 4 heads × 8) and one layer

            var bytes = await store.ReadAllBytesAsync(summary.FusedModel);
            var (model, meta) = ModelIO.LoadModel(bytes, summary.FusedModel);
            var tokenizer = TextTokenizer.Load(meta[TextTokenizer.MetadataKey]);
            Assert.Equal(meta[TextTokenizer.MetadataKey], tokenizer.Save());
            Assert.True(tokenizer.VocabSize <= 120);
            Assert.Equal(tokenizer.VocabSize, ((TransformerSpec)model.Spec).VocabSize);

            var data = TextRunData.ForCheckpoint(meta, null, summary.FusedModel);
            var again = Evaluation.Evaluate(model, data, 100, measureLatency: false, default);
            Assert.Equal(summary.Evaluation.Samples, again.Samples);
            Assert.Equal(summary.Evaluation.Accuracy, again.Accuracy, 6);
            Assert.True(again.Accuracy > 0.6, $"accuracy {again.Accuracy:P1} on three separable topics");
            model.Module.Dispose();
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
