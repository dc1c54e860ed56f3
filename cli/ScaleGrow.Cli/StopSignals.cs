using System.Runtime.InteropServices;

namespace ScaleGrow.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM — what <c>kill</c> and a container platform scaling in send — while a run is watched:
/// the first asks the run to stop gracefully (it fuses and reports the model it has within seconds); a second one
/// ends the process at once. Every store write is atomic, so a process ended either way leaves the run resumable.
/// The in-process engine's hosts also stop on these signals (their console lifetime), so RunCommand finishes such a
/// run itself once the engine is down.
/// </summary>
public sealed class StopSignals : IDisposable
{
    private readonly PosixSignalRegistration[] _registrations;
    private int _signals;

    /// <param name="requestStop">Asks the run to finish gracefully; called once, on the first signal.</param>
    public StopSignals(Action<string> requestStop)
    {
        void Handle(PosixSignalContext context)
        {
            string name = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "Ctrl+C";
            if (Interlocked.Increment(ref _signals) == 1)
            {
                context.Cancel = true; // keep running until the graceful stop completes
                requestStop(name);
            }
            else
            {
                Console.Error.WriteLine($"error: {name} again: ending now; the run stays resumable (`scalegrow runs resume`)");
                Console.Error.Flush();
                Environment.Exit(context.Signal == PosixSignal.SIGTERM ? 143 : 130);
            }
        }
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
