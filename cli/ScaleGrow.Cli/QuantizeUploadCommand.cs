using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>quantize-upload FILE</c>: puts the file into the store's <c>uploads</c> container (as a user would upload it to
/// the service) and runs quantize-on-upload on the local engine — the same orchestration, validation and quantizer the
/// blob trigger starts — then prints the outcome and copies the artifact and report to <c>--out</c>.
/// </summary>
public static class QuantizeUploadCommand
{
    public static async Task<int> ExecuteAsync(string[] args)
    {
        var cl = CommandLine.Parse("quantize-upload", args,
            ["store", "engine", "task-hub", "bits", "method", "group-size", "calibration", "export", "out"], ["json"], maxPositionals: 1);
        var output = new Output(cl.Flag("json"));
        if (cl.Positionals.Count != 1) throw new UsageException("quantize-upload: give exactly one FILE");
        string file = cl.Positionals[0];
        if (!File.Exists(file)) throw new UsageException($"quantize-upload: no such file '{file}'");
        var engineKind = StoreOptions.Engine(cl);
        if (engineKind == EngineKind.Direct)
            throw new UsageException("quantize-upload: --engine direct runs growth runs only; use inprocess or azure-storage");
        var (store, connection) = StoreOptions.Open(cl);

        // Options travel as blob metadata, exactly as a service user would set them on the upload.
        var metadata = new Dictionary<string, string>();
        foreach (var (option, key) in new[] { ("bits", "bits"), ("method", "method"), ("group-size", "groupSize"),
                     ("calibration", "calibration"), ("export", "export") })
            if (cl.Get(option) is { } value) metadata[key] = value;
        string name = UploadSteps.SafeName(Path.GetFileName(file));
        ArtifactInfo info;
        await using (var content = File.OpenRead(file))
            info = await store.WriteAsync($"{UploadSteps.Uploads}/{name}", content,
                new ArtifactWriteOptions { Metadata = metadata });
        var upload = new UploadRef(name, info.ETag);

        var uploads = new UploadSteps(store);
        await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
            cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, CancellationToken.None, uploads: uploads);
        var (instanceId, _) = await UploadsService.StartOnceAsync(engine.Client, upload);
        output.Progress.MarkupLine($"[grey]uploaded {Markup.Escape(name)}; quantize-on-upload {instanceId}[/]");
        var done = await engine.Client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true);
        if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
            throw new InvalidOperationException($"quantize-upload {instanceId} {done.RuntimeStatus}: " +
                                                $"{done.FailureDetails?.ErrorMessage}");
        var outcome = done.ReadOutputAs<UploadOutcome>()!;
        var result = JsonSerializer.SerializeToNode(outcome, CliJson.Default.UploadOutcome)!.AsObject();
        result["instanceId"] = instanceId;
        var report = JsonNode.Parse(await store.ReadAllBytesAsync(outcome.Report))!;
        result["report"] = report;
        if (cl.Get("out") is { } outDir)
        {
            Directory.CreateDirectory(outDir);
            foreach (var path in new[] { outcome.Artifact, outcome.Report, (string?)report["onnx"] }.OfType<string>())
                AtomicFile.Write(Path.Combine(outDir, Path.GetFileName(path)), await store.ReadAllBytesAsync(path));
        }
        if (outcome.Status != "quantized")
        {
            output.Result(result);
            throw new ScaleGrowException($"upload {name} rejected: {outcome.Error}");
        }
        output.Line($"[bold green]quantized[/] {Markup.Escape(name)} → {Markup.Escape(outcome.Artifact!)} " +
                    $"({(string?)report["quantization"]?["method"]}, {(int?)report["quantization"]?["bits"]} bits): " +
                    $"accuracy {(double?)report["accuracyBefore"]:P2} → {(double?)report["accuracyAfter"]:P2}, " +
                    $"{(long?)report["fp32Bytes"]:N0} → {(long?)report["quantizedBytes"]:N0} bytes");
        output.Result(result);
        return 0;
    }
}
