using System.Diagnostics;

namespace ScaleGrow.Tests.Infrastructure;

/// <summary>
/// Debian's Python (apt's <c>python3</c>, not the pyenv one on PATH): the independent reader that checks our files
/// can be read with nothing but their documented layout.
/// </summary>
internal static class DebianPython
{
    public const string Executable = "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> (<c>python3 -c</c>) on <paramref name="file"/> and returns its
    /// stdout; fails the test if it does not exit 0 within 60 s.</summary>
    public static string Run(string script, string file)
    {
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(file);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "python did not finish in 60 s");
        Assert.True(process.ExitCode == 0, $"python failed: {stderr.Result}");
        return stdout.Result;
    }
}
