using ScaleGrow;
using ScaleGrow.Cli;

// `scalegrow <command> [options]` — thin: parse arguments, call core, show progress and results.
// Errors are one line on stderr: 2 for bad arguments or input, 1 for anything unexpected.
NativeMath.Configure(); // before any tensor: keeps CPU convolution gradients finite (see NativeMath)
if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.Out.Write(Commands.Usage);
    return args.Length == 0 ? 2 : 0;
}
try
{
    // Intra-op threads for every command: --threads N anywhere, else SCALEGROW_THREADS, else the cores this process
    // may use (Environment.ProcessorCount follows a container's CPU limit; libtorch's own default does not).
    var (rest, threads) = CommandLine.TakeThreads(args);
    ScaleGrow.ComputeDevice.ConfigureThreads(threads);
    if (rest.Length == 0) throw new UsageException("no command (scalegrow --help lists them)");
    args = rest;
    return await Commands.RunAsync(args[0], args[1..]);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
catch (ScaleGrowException e)
{
    Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("error: cancelled");
    return 130;
}
catch (Exception e) when (Environment.GetEnvironmentVariable("SCALEGROW_DEBUG") is null)
{
    Console.Error.WriteLine($"error: internal: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} " +
                            "(set SCALEGROW_DEBUG=1 for the stack trace)");
    return 1;
}
