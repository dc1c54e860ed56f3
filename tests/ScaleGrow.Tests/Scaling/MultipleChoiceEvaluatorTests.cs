using System.Text;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Scaling;

public sealed class MultipleChoiceEvaluatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scalegrow-mc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IReadOnlyList<int> Bytes(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

    private const string Questions = """
        {"question": "The sky is", "choices": ["blue", "green", "loud"], "answer": 0}
        {"question": "Two plus two is", "choices": ["three", "four", "five"], "answer": 1}

        {"question": "Cats say", "choices": ["woof", "moo", "meow"], "answer": 2}
        {"question": "Fire is", "choices": ["hot", "cold"], "answer": 0}
        """;

    [Fact]
    public void AModelTrainedOnTheAnswersPicksThemUnderEveryNormalization()
    {
        string path = Path.Combine(_dir, "questions.jsonl");
        File.WriteAllText(path, Questions);
        var items = MultipleChoiceEvaluator.ReadJsonl(path);
        Assert.Equal(4, items.Count);

        torch.manual_seed(13);
        var spec = DecoderSpec.Create(257, hidden: 32, layers: 2, heads: 2, kvHeads: 1, intermediate: 64,
            tieEmbeddings: true, maxPositions: 32) with
        { BosTokenId = 256 };
        using var model = new DecoderModel(spec);
        // Memorise "<bos>question answer": inputs and next-token targets, padding ignored.
        var texts = items.Select(i => new[] { 256 }.Concat(Bytes(i.Question + " " + i.Choices[i.Answer])).ToArray())
            .ToList();
        int length = texts.Max(t => t.Length);
        var x = new long[texts.Count * (length - 1)];
        var y = Enumerable.Repeat(-100L, texts.Count * (length - 1)).ToArray();
        for (int i = 0; i < texts.Count; i++)
            for (int j = 0; j + 1 < texts[i].Length; j++)
            {
                x[i * (length - 1) + j] = texts[i][j];
                y[i * (length - 1) + j] = texts[i][j + 1];
            }
        var inputs = torch.tensor(x).view(texts.Count, length - 1);
        var targets = torch.tensor(y).view(texts.Count, length - 1);
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 1e-2, WeightDecay = 0,
        });
        var metrics = Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(1e-2, 1e-3, 150, 10),
            Enumerable.Repeat((inputs, targets), 150), loss: Losses.NextToken());
        Assert.True(metrics.Loss < 1.5, $"did not learn: mean loss {metrics.Loss}");

        foreach (var normalization in Enum.GetValues<LengthNormalization>())
        {
            var result = MultipleChoiceEvaluator.Evaluate(model, items, Bytes, normalization);
            Assert.Equal(new[] { 0, 1, 2, 0 }, result.Predictions);
            Assert.Equal(1.0, result.Accuracy);
        }
        // Shuffling which choice is right must change the answer: the scores depend on the text, not the slot.
        var swapped = items[0] with { Choices = ["green", "blue", "loud"], Answer = 1 };
        Assert.Equal(1, MultipleChoiceEvaluator.Evaluate(model, [swapped], Bytes).Predictions[0]);
    }

    [Theory]
    [InlineData("{\"question\": \"q\", \"choices\": [\"a\", \"b\"]}", "needs \"answer\"")]
    [InlineData("{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 2}",
        "index of the right choice (0..1)")]
    [InlineData("{\"question\": \"q\", \"choices\": \"ab\", \"answer\": 0}", "array of at least two strings")]
    [InlineData("{\"question\": 3, \"choices\": [\"a\", \"b\"], \"answer\": 0}", "string \"question\"")]
    [InlineData("{\"question\": \"q\", \"choices\": [\"a\",", "not valid JSON")]
    [InlineData("[1, 2]", "not a JSON object")]
    public void AMalformedLineIsOneErrorNamingFileAndLine(string bad, string expected)
    {
        string path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(path, "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n\n" + bad + "\n");
        var e = Assert.Throws<DataFormatException>(() => MultipleChoiceEvaluator.ReadJsonl(path));
        Assert.StartsWith($"{path}:3: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
