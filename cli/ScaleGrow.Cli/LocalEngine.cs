using DurableTask.AzureStorage;
using DurableTask.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;

namespace ScaleGrow.Cli;

public enum EngineKind { InProcess, AzureStorage, Direct }

/// <summary>
/// Hosts the ScaleGrow orchestrations on one machine. <c>inprocess</c> (default): the Durable Task engine in memory
/// (Microsoft.DurableTask.InProcessTestHost) — no services needed, the history lives as long as the process.
/// <c>azure-storage</c>: the same gRPC sidecar backed by DurableTask.AzureStorage (the backend Durable Functions
/// uses) on Azurite or a real account, so the orchestration's history survives the process: kill the command, run it
/// again, and the run continues where it was.
/// </summary>
public sealed class LocalEngine : IAsyncDisposable
{
    private readonly IAsyncDisposable[] _owned;

    private LocalEngine(DurableTaskClient client, params IAsyncDisposable[] owned)
    {
        Client = client;
        _owned = owned;
    }

    public DurableTaskClient Client { get; }

    /// <param name="withWorker">False: a client only (list, stop, delete), which must not pick up and run the
    /// orchestrations recorded in the store.</param>
    public static async Task<LocalEngine> StartAsync(EngineKind kind, RunSteps steps, string? storageConnection,
        string taskHub, ILoggerFactory loggerFactory, CancellationToken cancellationToken, bool withWorker = true,
        UploadSteps? uploads = null, ScaleGrow.Sweeps.SweepSteps? sweeps = null)
    {
        // The engines' hosts log every gRPC call at Information; the CLI shows progress itself.
        if (Environment.GetEnvironmentVariable("SCALEGROW_DEBUG") is null)
            Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Error");
        if (kind == EngineKind.InProcess)
        {
            var host = await DurableTaskTestHost.StartAsync(r => ScaleGrowTasks.Register(r, steps, uploads, sweeps),
                new DurableTaskTestHostOptions { LoggerFactory = loggerFactory }, cancellationToken);
            return new LocalEngine(host.Client, host);
        }
        if (string.IsNullOrEmpty(storageConnection))
            throw new UsageException("--engine azure-storage needs --store with an Azure Storage connection string " +
                                     "(Azurite: UseDevelopmentStorage=true)");

        var service = new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            TaskHubName = taskHub,
            StorageAccountClientProvider = new StorageAccountClientProvider(storageConnection),
            LoggerFactory = loggerFactory,
            // One training activity at a time per process: it already uses every core.
            MaxConcurrentTaskActivityWorkItems = 1,
            MaxConcurrentTaskOrchestrationWorkItems = 4,
            // After a crash, the step that was running is handed out again once its message becomes visible and
            // the dead process's partition leases expire: keep both short for a single-machine engine.
            WorkItemQueueVisibilityTimeout = TimeSpan.FromSeconds(30),
            ControlQueueVisibilityTimeout = TimeSpan.FromSeconds(30),
            LeaseInterval = TimeSpan.FromSeconds(15),
            LeaseRenewInterval = TimeSpan.FromSeconds(5),
            LeaseAcquireInterval = TimeSpan.FromSeconds(5),
        });
        await service.CreateIfNotExistsAsync();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0,
            o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<IOrchestrationService>(new PlainTagsOrchestrationService(service));
        builder.Services.AddSingleton<IOrchestrationServiceClient>(service);
        builder.Services.AddSingleton<TaskHubGrpcServer>();
        var sidecar = builder.Build();
        sidecar.MapGrpcService<TaskHubGrpcServer>();
        await sidecar.StartAsync(cancellationToken);
        var address = sidecar.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
            .Addresses.First();
        var channel = GrpcChannel.ForAddress(address.Replace("[::]", "127.0.0.1"));

        var workerBuilder = Host.CreateApplicationBuilder();
        workerBuilder.Logging.ClearProviders();
        workerBuilder.Services.AddSingleton(loggerFactory);
        if (withWorker)
            workerBuilder.Services.AddDurableTaskWorker(b =>
            {
                b.AddTasks(r => ScaleGrowTasks.Register(r, steps, uploads, sweeps));
                b.UseGrpc(channel);
            });
        workerBuilder.Services.AddDurableTaskClient(b => b.UseGrpc(channel));
        var worker = workerBuilder.Build();
        await worker.StartAsync(cancellationToken);
        var client = worker.Services.GetRequiredService<DurableTaskClient>();
        // Client only: the sidecar never started the orchestration service (no worker connected), and stopping the
        // sidecar stops that service anyway, which throws a NullReferenceException on a thread of its own and aborts
        // the process (exit 134 after `runs stop`/`runs delete`, issue 16). Nothing runs there, so it is disposed
        // without the stop.
        IAsyncDisposable sidecarDisposer = withWorker ? new HostDisposer(sidecar) : sidecar;
        return new LocalEngine(client, new HostDisposer(worker), sidecarDisposer, new ChannelDisposer(channel));
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return; // a stopped run disposes it early (RunCommand)
        foreach (var d in _owned)
        {
            try
            {
                await d.DisposeAsync();
            }
            catch (Exception)
            {
                // Shutting down: a host that fails to stop cleanly must not hide the command's result.
            }
        }
    }

    private sealed class HostDisposer(IHost host) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await host.StopAsync(timeout.Token);
            host.Dispose();
        }
    }

    private sealed class ChannelDisposer(GrpcChannel channel) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            channel.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
