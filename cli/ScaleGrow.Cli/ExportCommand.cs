using System.Text.Json.Nodes;
using ScaleGrow.Export;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>scalegrow export</c>: a checkpoint (float or quantized, any family) → a standard ONNX file with the weights
/// inside (core: <see cref="OnnxExporter"/>), a text model's tokenizer beside it; the file is opened in ONNX Runtime
/// before the command reports success (docs/deploy.md).
/// </summary>
public static class ExportCommand
{
    public static Task<int> ExecuteAsync(string[] args) => Task.FromResult(Execute(args));

    private static int Execute(string[] args)
    {
        var cl = CommandLine.Parse("export", args, ["model", "format", "out", "opset", "batch"], ["json"]);
        var output = new Output(cl.Flag("json"));
        string modelPath = cl.Require("model");
        string outPath = cl.Require("out");
        cl.Choice("format", "onnx");
        string batch = cl.Get("batch") ?? "dynamic";
        int? fixedBatch = null;
        if (batch != "dynamic")
        {
            fixedBatch = cl.Int("batch", 1, 1 << 20) ??
                         throw new UsageException("export: --batch must be 'dynamic' or a positive integer");
        }
        var options = new OnnxExportOptions
        {
            Opset = cl.Int("opset", OnnxExportOptions.MinOpset, OnnxExportOptions.MaxOpset) ??
                    OnnxExportOptions.DefaultOpset,
            Batch = fixedBatch,
        };
        if (!File.Exists(modelPath)) throw new UsageException($"--model: no such file '{modelPath}'");

        var result = OnnxExporter.ExportCheckpoint(File.ReadAllBytes(modelPath), modelPath, options);
        AtomicFile.Write(outPath, result.Bytes);
        // The file must open in ONNX Runtime, the checker: a file it refuses is not left behind.
        try
        {
            OnnxRuntimeModel.Load(outPath).Dispose();
        }
        catch
        {
            File.Delete(outPath);
            throw;
        }
        string? tokenizerPath = null;
        if (result.Tokenizer is { } tokenizer)
        {
            tokenizerPath = OnnxExportResult.TokenizerPathFor(outPath);
            AtomicFile.Write(tokenizerPath, System.Text.Encoding.UTF8.GetBytes(tokenizer));
        }
        foreach (var note in result.Notes) output.Line($"note: {Markup.Escape(note)}");
        output.Line($"exported [bold]{Markup.Escape(result.Arch)}[/] to {Markup.Escape(outPath)} " +
                    $"(opset {result.Opset}, batch {batch}, {result.Bytes.Length:N0} bytes" +
                    (result.QuantizedLayers > 0 ? $", {result.QuantizedLayers} layers at {result.Bits} bits" : "") +
                    ")" +
                    (tokenizerPath is null ? "" : $"; tokenizer: {Markup.Escape(tokenizerPath)}"));
        output.Result(new JsonObject
        {
            ["out"] = outPath, ["arch"] = result.Arch, ["format"] = "onnx", ["opset"] = result.Opset, ["batch"] = batch,
            ["bytes"] = result.Bytes.Length, ["fusedUnits"] = result.FusedUnits,
            ["quantizedLayers"] = result.QuantizedLayers, ["bits"] = result.Bits, ["tokenizer"] = tokenizerPath,
            ["notes"] = new JsonArray(result.Notes.Select(n => (JsonNode)n!).ToArray()),
        });
        return 0;
    }
}
