// Shared by the bench programs (linked into each project): what a result's "machine" line says.
namespace ScaleGrow.Bench;

/// <summary>The machine a measurement ran on, and how busy it was when it started.</summary>
internal static class BenchMachine
{
    /// <summary>CPU model and OS, from /proc/cpuinfo where there is one.</summary>
    public static string Describe()
    {
        try
        {
            var model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim();
            return $"{model}, {Environment.OSVersion}";
        }
        catch (IOException)
        {
            return Environment.OSVersion.ToString();
        }
    }

    /// <summary>The 1-minute load average, or "?" where /proc/loadavg is missing.</summary>
    public static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; } catch (IOException) { return "?"; }
    }
}
