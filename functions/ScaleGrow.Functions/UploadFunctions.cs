using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;

namespace ScaleGrow.Functions;

/// <summary>
/// Quantize-on-upload: a blob in <c>uploads</c> starts the QuantizeUpload orchestration with an instance id derived
/// from the blob's name and ETag, so a trigger that fires twice for the same version starts one orchestration.
/// </summary>
public sealed class UploadFunctions(ILogger<UploadFunctions> logger)
{
    [Function("QuantizeOnUpload")]
    public async Task QuantizeOnUpload(
        [BlobTrigger("uploads/{name}", Source = BlobTriggerSource.EventGrid, Connection = "AzureWebJobsStorage")]
        BlobClient blob, string name, [DurableClient] DurableTaskClient client, CancellationToken cancellationToken)
    {
        var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
        var upload = new UploadRef(name, properties.Value.ETag.ToString());
        var (instanceId, started) = await UploadsService.StartOnceAsync(client, upload, cancellationToken);
        if (!started)
            logger.LogInformation("upload {Name} ({ETag}) already handled by {Instance}", name, upload.ETag, instanceId);
    }

    [Function(TaskNames.QuantizeUpload)]
    public static Task<UploadOutcome> QuantizeUpload([OrchestrationTrigger] TaskOrchestrationContext context) =>
        QuantizeUploadOrchestration.RunAsync(context, context.GetInput<UploadRef>()!);
}
