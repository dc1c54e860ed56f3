using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ScaleGrow.Functions;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

// The Functions host: trigger bindings and dependency injection only. The orchestrations and activities are the
// ones the `scalegrow` CLI hosts locally (core/ScaleGrow.Orchestration); their work is core's steps (core/ScaleGrow.Core/Runs/Steps/),
// listed once in ActivityTable.
ScaleGrow.NativeMath.Configure(); // before any tensor: keeps CPU convolution gradients finite (see NativeMath)
// Intra-op threads: SCALEGROW_THREADS, else the replica's CPU limit (libtorch's default counts the host's cores).
ScaleGrow.ComputeDevice.ConfigureThreads();
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddSingleton<IArtifactStore>(_ => ArtifactStoreSettings.Open(builder.Configuration));
// Every activity, from the one table the CLI's hosts use too (ActivityFunctions binds each to its trigger).
builder.Services.AddSingleton(sp =>
{
    var store = sp.GetRequiredService<IArtifactStore>();
    return ScaleGrow.Orchestration.ActivityTable.For(new RunSteps(store, sp.GetService<ILogger<RunSteps>>()),
        new UploadSteps(store), new ScaleGrow.Sweeps.SweepSteps(store));
});
// Runs read data only from the named datasets' folders and the roots the operator lists here (';'-separated), never
// from an arbitrary server path in a request (issue 16).
builder.Services.AddSingleton(DataAccessPolicy.FromSetting(builder.Configuration["ScaleGrow:DataRoots"]));
builder.Build().Run();
