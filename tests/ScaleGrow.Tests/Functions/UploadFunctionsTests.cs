using System.Text;
using Azure.Storage.Blobs;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Checkpoints;
using ScaleGrow.Functions;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Models;
using ScaleGrow.Tests.Orchestration;
using TorchSharp;

namespace ScaleGrow.Tests.Functions;

/// <summary>
/// Quantize-on-upload: the blob-trigger function is called with a real uploaded blob in Azurite and a real
/// DurableTaskClient from the in-process engine, as the host would call it.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class UploadFunctionsTests(AzuriteFixture azurite)
{
    private static byte[] ValidCheckpoint()
    {
        torch.manual_seed(4);
        var spec = CnnFusionTests.WithEveryFittingBranch(CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 0], stageWidths: [4, 6, 8]));
        using var model = new CnnModel(spec);
        return ModelIO.SaveModel(model);
    }

    private static async Task<UploadOutcome> UploadAndTriggerAsync(BlobServiceClient service, DurableTaskClient client,
        UploadFunctions function, string name, byte[] content, int triggers = 1,
        Dictionary<string, string>? blobMetadata = null)
    {
        var container = service.GetBlobContainerClient(UploadSteps.Uploads);
        await container.CreateIfNotExistsAsync();
        var blob = container.GetBlobClient(name);
        var etag = (await blob.UploadAsync(new BinaryData(content),
            new Azure.Storage.Blobs.Models.BlobUploadOptions { Metadata = blobMetadata })).Value.ETag.ToString();
        for (int i = 0; i < triggers; i++)
            await function.QuantizeOnUpload(blob, name, client, CancellationToken.None);
        string instance = UploadSteps.InstanceIdFor(new UploadRef(name, etag));
        var metadata = await client.WaitForInstanceCompletionAsync(instance, getInputsAndOutputs: true,
            new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        return metadata.ReadOutputAs<UploadOutcome>()!;
    }

    [Fact]
    public async Task ValidUploadsAreProcessedOnceAndGarbageIsRejectedWithoutStoppingTheService()
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        var uploads = new UploadSteps(store);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);
        var function = new UploadFunctions(NullLogger<UploadFunctions>.Instance);
        var service = new BlobServiceClient(azurite.ConnectionString);
        string tag = Guid.NewGuid().ToString("N")[..8];

        // A valid upload, with the trigger firing twice: one orchestration, one artifact and report.
        var ok = await UploadAndTriggerAsync(service, engine.Client, function, $"model-{tag}.safetensors",
            ValidCheckpoint(), triggers: 2);
        Assert.Equal("quantized", ok.Status);
        Assert.NotNull(await store.GetInfoAsync(ok.Artifact!));
        Assert.NotNull(await store.GetInfoAsync(ok.Report));
        var instances = new List<string>();
        await foreach (var page in engine.Client.GetAllInstancesAsync(new OrchestrationQuery { PageSize = 100 }).AsPages())
            instances.AddRange(page.Values.Where(m => m.Name == "QuantizeUpload").Select(m => m.InstanceId));
        var etag = (await service.GetBlobContainerClient("uploads").GetBlobClient($"model-{tag}.safetensors")
            .GetPropertiesAsync()).Value.ETag.ToString();
        Assert.Single(instances, i => i == UploadSteps.InstanceIdFor(new UploadRef($"model-{tag}.safetensors", etag)));
        // The artifact is a packed 4-bit checkpoint of the fused model (the defaults: gptq-reorder, 4 bits),
        // calibrated on Fashion-MNIST's training split, and several times smaller than the float upload.
        var artifactBytes = await store.ReadAllBytesAsync(ok.Artifact!);
        var loaded = ModelIO.LoadModel(artifactBytes, ok.Artifact!);
        Assert.True(((CnnSpec)loaded.Model.Spec).Fused);
        Assert.Equal(CheckpointMetadata.QuantizedModelKind, CheckpointCodec.ReadKind(artifactBytes, ok.Artifact!));
        var okReport = System.Text.Json.Nodes.JsonNode.Parse(await store.ReadAllBytesAsync(ok.Report))!;
        Assert.Equal("gptq-reorder", (string)okReport["quantization"]!["method"]!);
        Assert.Equal(4, (int)okReport["quantization"]!["bits"]!);
        Assert.NotNull(okReport["accuracyAfter"]);
        Assert.True((long)okReport["quantizedBytes"]! * 2 < ValidCheckpoint().Length);

        // Upload metadata chooses the method and bits; options it cannot parse reject the upload, naming the key.
        var rtn = await UploadAndTriggerAsync(service, engine.Client, function, $"rtn-{tag}.safetensors",
            ValidCheckpoint(), blobMetadata: new() { ["method"] = "rtn", ["bits"] = "8" });
        Assert.Equal("quantized", rtn.Status);
        Assert.EndsWith(".w8.safetensors", rtn.Artifact);
        var badBits = await UploadAndTriggerAsync(service, engine.Client, function, $"bad-{tag}.safetensors",
            ValidCheckpoint(), blobMetadata: new() { ["bits"] = "four" });
        Assert.Equal("rejected", badBits.Status);
        Assert.Contains("bits", badBits.Error);

        // Garbage: random bytes, a header claiming 10 GB, tensors that do not match the spec.
        var random = new byte[4096];
        new Random(1).NextBytes(random);
        var huge = new byte[64];
        BitConverter.GetBytes(10_000_000_000L).CopyTo(huge, 0);
        var mismatched = ValidCheckpoint();
        using (var ms = new MemoryStream(mismatched))
        {
            var checkpoint = CheckpointCodec.LoadModel(ms, "x");
            var tensors = checkpoint.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
            tensors["head.fc.weight"] = torch.zeros(3, 3);
            using var outStream = new MemoryStream();
            CheckpointCodec.SaveModel(outStream, checkpoint with { Tensors = tensors });
            mismatched = outStream.ToArray();
        }
        foreach (var (name, content, mentions) in new[]
                 {
                     ($"random-{tag}.safetensors", random, "random"),
                     ($"huge-{tag}.safetensors", huge, "huge"),
                     ($"mismatch-{tag}.safetensors", mismatched, "head.fc.weight"),
                 })
        {
            var rejected = await UploadAndTriggerAsync(service, engine.Client, function, name, content);
            Assert.Equal("rejected", rejected.Status);
            Assert.NotNull(rejected.Error);
            var report = Encoding.UTF8.GetString(await store.ReadAllBytesAsync(rejected.Report));
            Assert.Contains("rejected", report);
            if (mentions == "head.fc.weight") Assert.Contains(mentions, rejected.Error);
            Assert.Null(await store.GetInfoAsync($"uploads/{name}"));          // moved aside …
            Assert.NotNull(await store.GetInfoAsync(UploadSteps.PathsFor(name, 4).RejectedUpload)); // … not retried
        }

        // The service keeps serving the next upload.
        var next = await UploadAndTriggerAsync(service, engine.Client, function, $"next-{tag}.safetensors", ValidCheckpoint());
        Assert.Equal("quantized", next.Status);
    }

    private static (BlobArtifactStore Store, UploadSteps Uploads, UploadFunctions Function, BlobServiceClient Service,
        string Tag) Parts(AzuriteFixture azurite)
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        // No calibration data here (an empty folder): these tests quantize with rtn and measure nothing.
        var uploads = new UploadSteps(store)
        {
            EvaluationSamples = 0, DataDirectory = Directory.CreateTempSubdirectory("scalegrow-no-data-").FullName,
        };
        return (store, uploads, new UploadFunctions(NullLogger<UploadFunctions>.Instance),
            new BlobServiceClient(azurite.ConnectionString), Guid.NewGuid().ToString("N")[..8]);
    }

    private static readonly Dictionary<string, string> Rtn = new() { ["method"] = "rtn" };

    /// <summary>A valid checkpoint whose spec is edited after saving (the tensors stay those of the real model).
    /// </summary>
    private static byte[] WithSpecEdit(byte[] checkpoint, Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        using var ms = new MemoryStream(checkpoint);
        var loaded = CheckpointCodec.LoadModel(ms, "x");
        var spec = System.Text.Json.Nodes.JsonNode.Parse(loaded.SpecJson)!.AsObject();
        edit(spec);
        using var outStream = new MemoryStream();
        CheckpointCodec.SaveModel(outStream, loaded with { SpecJson = spec.ToJsonString() });
        return outStream.ToArray();
    }

    [Fact]
    public async Task ASpecClaimingMoreParametersThanItsFileHoldsIsRejectedWithAReport()
    {
        var (store, uploads, function, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);

        // A spec that claims two billion classes on a few hundred bytes of tensors: building its model asked libtorch
        // for tens of gigabytes, which failed outside the checkpoint checks, and the orchestration failed.
        string greedy = $"greedy-{tag}.safetensors";
        var claimsTooMuch = WithSpecEdit(ValidCheckpoint(), spec => spec["numClasses"] = int.MaxValue);
        var rejected = await UploadAndTriggerAsync(service, engine.Client, function, greedy, claimsTooMuch);
        Assert.Equal("rejected", rejected.Status);
        // Refused by the spec's bounds (numClasses at most 2^20) or by its parameter count against the file.
        Assert.Matches("numClasses|parameters", rejected.Error);
        Assert.NotNull(await store.GetInfoAsync(rejected.Report));
        Assert.Null(await store.GetInfoAsync($"uploads/{greedy}"));
        Assert.NotNull(await store.GetInfoAsync(UploadSteps.PathsFor(greedy, 4).RejectedUpload));
    }

    [Fact]
    public async Task AnUploadNameTheStoreCannotAddressIsRejectedWithAReport()
    {
        var (store, uploads, function, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);
        // A name Azure accepts but the store refuses (a 230-byte path segment): the orchestration failed in
        // ValidateUpload. Now it is rejected with a report under rejected/_hashed/ (the blob itself cannot be
        // addressed through the store; the uploads/ retention rule removes it).
        string longName = $"long-{tag}-" + new string('x', 220) + ".safetensors";
        var unaddressable = await UploadAndTriggerAsync(service, engine.Client, function, longName, ValidCheckpoint());
        Assert.Equal("rejected", unaddressable.Status);
        Assert.StartsWith("rejected/_hashed/", unaddressable.Report);
        var report = System.Text.Json.Nodes.JsonNode.Parse(await store.ReadAllBytesAsync(unaddressable.Report))!;
        Assert.Equal(longName, (string)report["upload"]!);
        Assert.Contains("200", (string)report["error"]!);
    }

    [Fact]
    public async Task UploadsWithTheSameStemKeepTheirOwnResultsAndReports()
    {
        var (store, uploads, function, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);

        // good.safetensors then good.bin: both results and reports survive.
        var first = await UploadAndTriggerAsync(service, engine.Client, function, $"good-{tag}.safetensors",
            ValidCheckpoint(), blobMetadata: Rtn);
        var second = await UploadAndTriggerAsync(service, engine.Client, function, $"good-{tag}.bin",
            ValidCheckpoint(), blobMetadata: Rtn);
        Assert.Equal("quantized", first.Status);
        Assert.Equal("quantized", second.Status);
        Assert.NotEqual(first.Artifact, second.Artifact);
        Assert.NotEqual(first.Report, second.Report);
        foreach (var outcome in new[] { first, second })
        {
            Assert.NotNull(await store.GetInfoAsync(outcome.Artifact!));
            var report = System.Text.Json.Nodes.JsonNode.Parse(await store.ReadAllBytesAsync(outcome.Report))!;
            Assert.Equal(outcome.Name, (string)report["upload"]!);
        }

    }

    [Fact]
    public async Task AnUploadNamedLikeAnotherUploadsErrorReportDoesNotReplaceThatReport()
    {
        var (store, uploads, function, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);
        // X is rejected; an upload named "X.error.json" (rejected too) must not replace X's error report.
        string x = $"x-{tag}.safetensors";
        var garbage = new byte[512];
        new Random(3).NextBytes(garbage);
        var rejectedX = await UploadAndTriggerAsync(service, engine.Client, function, x, garbage);
        var rejectedReportName = await UploadAndTriggerAsync(service, engine.Client, function, $"{x}.error.json",
            Encoding.UTF8.GetBytes("{\"upload\": \"not really\"}"));
        Assert.Equal("rejected", rejectedX.Status);
        Assert.Equal("rejected", rejectedReportName.Status);
        var xReport = System.Text.Json.Nodes.JsonNode.Parse(await store.ReadAllBytesAsync(rejectedX.Report))!;
        Assert.Equal(x, (string)xReport["upload"]!);
        Assert.Equal("rejected", (string)xReport["status"]!);
        Assert.Equal(garbage, await store.ReadAllBytesAsync(UploadSteps.PathsFor(x, 4).RejectedUpload));
        var otherReport = System.Text.Json.Nodes.JsonNode.Parse(
            await store.ReadAllBytesAsync(rejectedReportName.Report))!;
        Assert.Equal($"{x}.error.json", (string)otherReport["upload"]!);
    }

    [Fact]
    public async Task AnUploadReplacedAfterItsEventIsRejectedAndTheNewVersionIsLeftForItsOwnEvent()
    {
        var (store, uploads, _, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);
        string name = $"replaced-{tag}.safetensors";
        var blob = service.GetBlobContainerClient(UploadSteps.Uploads).GetBlobClient(name);
        await service.GetBlobContainerClient(UploadSteps.Uploads).CreateIfNotExistsAsync();
        var garbage = new byte[300];
        new Random(7).NextBytes(garbage);
        string oldETag = (await blob.UploadAsync(new BinaryData(garbage))).Value.ETag.ToString();
        // The name is overwritten with a valid checkpoint before the first version's event is handled.
        var newVersion = ValidCheckpoint();
        var replaced = await blob.UploadAsync(new BinaryData(newVersion),
            new Azure.Storage.Blobs.Models.BlobUploadOptions { Metadata = Rtn });
        string newETag = replaced.Value.ETag.ToString();

        var stale = new UploadRef(name, oldETag);
        var (instance, _) = await ScaleGrow.Orchestration.UploadsService.StartOnceAsync(engine.Client, stale);
        var done = await engine.Client.WaitForInstanceCompletionAsync(instance, getInputsAndOutputs: true,
            new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        var outcome = done.ReadOutputAs<UploadOutcome>()!;
        Assert.Equal("rejected", outcome.Status);
        Assert.Contains("replaced", outcome.Error);
        Assert.Null(await store.GetInfoAsync(UploadSteps.PathsFor(name, 4).Artifact));
        var still = await store.GetInfoAsync($"uploads/{name}");
        Assert.NotNull(still);                                      // the new version was not moved aside …
        Assert.Equal(newETag.Trim('"'), still.ETag.Trim('"'));

        // … and the quantize step itself reads only the version that was validated.
        await Assert.ThrowsAsync<ArtifactConflictException>(() => new QuantizeStep(uploads).RunAsync(stale));
        var current = new UploadRef(name, newETag);
        Assert.Equal("quantized", (await new QuantizeStep(uploads).RunAsync(current)).Status);
    }

    [Fact]
    public async Task ALargeUploadIsStreamedNotCopiedIntoManagedMemory()
    {
        var (store, uploads, function, service, tag) = Parts(azurite);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), uploads);
        byte[] big;
        torch.manual_seed(5);
        using (var model = new CnnModel(CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 1], stageWidths: [256, 768, 1280])))
            big = ModelIO.SaveModel(model);
        Assert.True(big.Length > 48 << 20, $"{big.Length} bytes");
        string name = $"big-{tag}.safetensors";
        var container = service.GetBlobContainerClient(UploadSteps.Uploads);
        await container.CreateIfNotExistsAsync();
        var blob = container.GetBlobClient(name);
        string etag = (await blob.UploadAsync(new BinaryData(big),
            new Azure.Storage.Blobs.Models.BlobUploadOptions
            {
                Metadata = new Dictionary<string, string> { ["method"] = "rtn", ["bits"] = "2" },
            })).Value.ETag.ToString();
        int length = big.Length;
        big = null!;
        GC.Collect();

        // Validation alone reads every tensor: it used to read the file whole twice (the SDK's buffer and a copy);
        // streamed, it allocates a few buffers of a few MiB on the managed heap (tensors live in native memory).
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var validation = await new ValidateUploadStep(uploads).RunAsync(new UploadRef(name, etag));
        long validating = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(validation.Valid, validation.Error);
        Assert.True(validating < length / 8, $"validation allocated {validating:N0} bytes for {length:N0}");

        // Validation and quantization together, through the real engine: what remains is the quantizer's own
        // one-byte-per-weight codes and the 2-bit result, less than one copy of the upload.
        before = GC.GetTotalAllocatedBytes(precise: true);
        await function.QuantizeOnUpload(blob, name, engine.Client, CancellationToken.None);
        var done = await engine.Client.WaitForInstanceCompletionAsync(UploadSteps.InstanceIdFor(new UploadRef(name, etag)),
            getInputsAndOutputs: true, new CancellationTokenSource(TimeSpan.FromMinutes(4)).Token);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal("quantized", done.ReadOutputAs<UploadOutcome>()!.Status);
        Assert.True(allocated < length, $"allocated {allocated:N0} managed bytes for a {length:N0}-byte upload");
    }
}
