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
        var function = new UploadFunctions(uploads, NullLogger<UploadFunctions>.Instance);
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
            Assert.NotNull(await store.GetInfoAsync($"rejected/{name}"));       // … not retried forever
        }

        // The service keeps serving the next upload.
        var next = await UploadAndTriggerAsync(service, engine.Client, function, $"next-{tag}.safetensors", ValidCheckpoint());
        Assert.Equal("quantized", next.Status);
    }
}
