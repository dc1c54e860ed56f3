using System.Text;
using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Cli;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Scaling;
using TorchSharp;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// <c>scalegrow eval --choices FILE.jsonl</c>: multiple-choice accuracy of a decoder given as a Hugging Face folder or
/// as our checkpoint, with the tokenizer the model carries; the command's answers are the evaluator's.
/// </summary>
public sealed class EvalChoicesCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scalegrow-choices-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Questions = """
        {"question": "The sky is", "choices": ["blue", "green", "loud"], "answer": 0}
        {"question": "Two plus two is", "choices": ["three", "four", "five"], "answer": 1}
        {"question": "Cats say", "choices": ["woof", "moo", "meow"], "answer": 2}
        """;

    /// <summary>A byte-level tiktoken rank file (one token per byte) with a begin-of-text token after them.</summary>
    private static HuggingFaceTokenizer ByteTokenizer()
    {
        var ranks = new StringBuilder();
        for (int b = 0; b < 256; b++) ranks.Append($"{Convert.ToBase64String([(byte)b])} {b}\n");
        return new HuggingFaceTokenizer(HuggingFaceTokenizer.Tiktoken, "tokenizer.model",
            Encoding.ASCII.GetBytes(ranks.ToString()), BosTokenId: 256, EosTokenId: null);
    }

    private static async Task<(int Code, JsonDocument Json)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(new StringWriter());
        try
        {
            int code = await Commands.RunAsync("eval", args);
            return (code, JsonDocument.Parse(stdout.ToString()));
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    [Fact]
    public async Task AHuggingFaceFolderAndOurCheckpointOfTheSameDecoderGiveTheEvaluatorsAnswers()
    {
        string questions = Path.Combine(_dir, "q.jsonl");
        File.WriteAllText(questions, Questions);
        torch.manual_seed(17);
        var spec = DecoderSpec.Create(257, hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32,
            tieEmbeddings: true, maxPositions: 64) with
        { BosTokenId = 256 };
        using var model = new DecoderModel(spec);
        var tokenizer = ByteTokenizer();
        string hf = Path.Combine(_dir, "hf");
        HuggingFaceLlama.Export(model, hf, tokenizer);
        string checkpoint = Path.Combine(_dir, "model.safetensors");
        File.WriteAllBytes(checkpoint, ModelIO.SaveModel(model, new Dictionary<string, string>
        {
            [HuggingFaceTokenizer.MetadataKey] = tokenizer.ToJson(),
        }));
        var expected = MultipleChoiceEvaluator.Evaluate(model, MultipleChoiceEvaluator.ReadJsonl(questions),
            text => tokenizer.Encode(text), LengthNormalization.PerToken);

        foreach (var source in new[] { hf, checkpoint })
        {
            var (code, json) = await Run("--model", source, "--choices", questions, "--normalize", "token", "--json");
            Assert.Equal(0, code);
            var root = json.RootElement;
            Assert.Equal(3, root.GetProperty("items").GetInt32());
            Assert.Equal(expected.Correct, root.GetProperty("correct").GetInt32());
            Assert.Equal(expected.Predictions, root.GetProperty("predictions").EnumerateArray().Select(p => p.GetInt32()));
            Assert.Equal("token", root.GetProperty("normalize").GetString());
        }
    }

    [Fact]
    public async Task BadQuestionsAModelWithoutATokenizerAndANonDecoderEachGetOneNamedError()
    {
        torch.manual_seed(3);
        using var model = new DecoderModel(DecoderSpec.Create(257, 16, 1, 2, 1, 32, true, 32));
        string bare = Path.Combine(_dir, "bare.safetensors");
        File.WriteAllBytes(bare, ModelIO.SaveModel(model));
        string good = Path.Combine(_dir, "good.jsonl");
        File.WriteAllText(good, Questions);
        string bad = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(bad, Questions + "\n{\"question\": \"x\", \"choices\": [\"a\"], \"answer\": 0}\n");

        var badLine = await Assert.ThrowsAsync<DataFormatException>(() => Run("--model", bare, "--choices", bad));
        Assert.Contains($"{bad}:4", badLine.Message);
        var noTokenizer = await Assert.ThrowsAsync<InvalidSpecException>(() => Run("--model", bare, "--choices", good));
        Assert.Contains("no tokenizer", noTokenizer.Message);
        Assert.Contains(bare, noTokenizer.Message);

        using var cnn = new ScaleGrow.Models.Cnn.CnnModel(
            ScaleGrow.Models.Cnn.CnnSpecs.Seed(ScaleGrow.Models.Cnn.CnnFamily.Vgg, 10, stageWidths: [8, 12, 16]));
        string image = Path.Combine(_dir, "cnn.safetensors");
        File.WriteAllBytes(image, ModelIO.SaveModel(cnn));
        var notDecoder = await Assert.ThrowsAsync<UsageException>(() => Run("--model", image, "--choices", good));
        Assert.Contains("needs a decoder", notDecoder.Message);
        var stray = await Assert.ThrowsAsync<UsageException>(() => Run("--model", bare, "--normalize", "char"));
        Assert.Contains("--normalize goes with --choices", stray.Message);
        foreach (var e in new Exception[] { badLine, noTokenizer, notDecoder, stray })
            Assert.DoesNotContain('\n', e.Message);
    }
}
