using System.Globalization;
using System.Numerics;

namespace ScaleGrow.Cli;

/// <summary>A bad command line: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The parsed arguments of one subcommand: <c>--name value</c> options, <c>--flag</c> switches and positionals.
/// Every option a command reads must be declared; anything else is a one-line error naming it.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = new();

    private CommandLine(string command) => Command = command;

    public string Command { get; }
    public IReadOnlyList<string> Positionals => _positionals;

    /// <summary>
    /// Takes the global <c>--threads N</c> (or <c>--threads=N</c>), accepted by every command, out of
    /// <paramref name="args"/>: the rest, and N if it was given.
    /// </summary>
    public static (string[] Remaining, int? Threads) TakeThreads(string[] args)
    {
        var rest = new List<string>(args.Length);
        int? threads = null;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string? value = null;
            if (arg == "--threads")
            {
                if (i + 1 >= args.Length) throw new UsageException("--threads needs a value");
                value = args[++i];
            }
            else if (arg.StartsWith("--threads=", StringComparison.Ordinal))
            {
                value = arg["--threads=".Length..];
            }
            if (value is null)
            {
                rest.Add(arg);
                continue;
            }
            if (threads is not null) throw new UsageException("--threads given twice");
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n is < 1 or > 1024)
                throw new UsageException($"--threads: '{value}' is not a thread count (1..1024)");
            threads = n;
        }
        return (rest.ToArray(), threads);
    }

    /// <summary>Parses <paramref name="args"/> given the options that take a value and the flags.</summary>
    public static CommandLine Parse(string command, IEnumerable<string> args, IReadOnlyCollection<string> options,
        IReadOnlyCollection<string> flags, int maxPositionals = 0)
    {
        var result = new CommandLine(command);
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                string name = arg[2..], inline = "";
                bool hasInline = false;
                int eq = name.IndexOf('=');
                if (eq >= 0)
                {
                    inline = name[(eq + 1)..];
                    name = name[..eq];
                    hasInline = true;
                }
                if (flags.Contains(name))
                {
                    if (hasInline) throw new UsageException($"{command}: --{name} takes no value");
                    result._flags.Add(name);
                }
                else if (options.Contains(name))
                {
                    string value;
                    if (hasInline) value = inline;
                    else if (e.MoveNext()) value = e.Current;
                    else throw new UsageException($"{command}: --{name} needs a value");
                    if (!result._values.TryAdd(name, value))
                        throw new UsageException($"{command}: --{name} given twice");
                }
                else
                {
                    var known = options.Concat(flags).Order().Select(o => "--" + o);
                    throw new UsageException(
                        $"{command}: unknown option --{name} (known: {string.Join(" ", known)})");
                }
            }
            else
            {
                if (result._positionals.Count >= maxPositionals)
                    throw new UsageException($"{command}: unexpected argument '{arg}'");
                result._positionals.Add(arg);
            }
        }
        return result;
    }

    public bool Flag(string name) => _flags.Contains(name);

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public string Require(string name) =>
        Get(name) ?? throw new UsageException($"{Command}: --{name} is required");

    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue) => Integer(name, min, max);

    public long? Long(string name, long min = long.MinValue, long max = long.MaxValue) => Integer(name, min, max);

    private T? Integer<T>(string name, T min, T max) where T : struct, IBinaryInteger<T>
    {
        var s = Get(name);
        if (s is null) return null;
        if (!T.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out T v) || v < min || v > max)
            throw new UsageException($"{Command}: --{name} must be an integer in {min}..{max}, got '{s}'");
        return v;
    }

    public double? Double(string name, double min = double.MinValue, double max = double.MaxValue)
    {
        var s = Get(name);
        if (s is null) return null;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v)
            || v < min || v > max)
            throw new UsageException($"{Command}: --{name} must be a number in [{min}, {max}], got '{s}'");
        return v;
    }

    public string? Choice(string name, params string[] allowed)
    {
        var s = Get(name);
        if (s is null || allowed.Contains(s, StringComparer.Ordinal)) return s;
        throw new UsageException($"{Command}: --{name} must be one of {string.Join(", ", allowed)}, got '{s}'");
    }
}
