using System.Text;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;

namespace ScaleGrow.Runs;

/// <summary>
/// The data a run's spec names must be there, readable and, on a shared service, in a place its operator allowed —
/// checked by every host before the run is registered (issue 16: a missing folder or a binary text file used to fail
/// only in InitializeRun, leaving a failed run behind; and the HTTP API opened any server path a caller named and
/// echoed its parse error). The CLI reads what its user points it at (<see cref="Unrestricted"/>); the service reads
/// only the named datasets' folders and the roots its operator configured (<see cref="WithinRoots"/>). Paths are
/// compared after resolving <c>..</c> and symbolic links, so neither leads out of a root.
/// </summary>
public sealed class DataAccessPolicy
{
    /// <summary>How much of a text file is read to decide that it is text.</summary>
    public const int TextProbeBytes = 64 * 1024;

    private readonly string[]? _roots;

    private DataAccessPolicy(string[]? roots) => _roots = roots;

    /// <summary>Any path this process can read (a local command run by the data's owner).</summary>
    public static DataAccessPolicy Unrestricted { get; } = new(null);

    /// <summary>The folders of the named datasets (Fashion-MNIST, MNIST, fortunes) where Debian installs them.</summary>
    public static IReadOnlyList<string> NamedDatasetFolders { get; } =
        [DatasetLoader.FashionMnistDefaultDirectory, DatasetLoader.MnistDefaultDirectory, FortuneReader.DefaultDirectory];

    /// <summary>Only the named datasets' folders and <paramref name="roots"/> (absolute folders).</summary>
    public static DataAccessPolicy WithinRoots(IEnumerable<string> roots)
    {
        var all = new List<string>();
        foreach (var root in NamedDatasetFolders.Concat(roots.Select(r => r.Trim()).Where(r => r.Length > 0)))
        {
            if (!Path.IsPathFullyQualified(root))
                throw new InvalidSpecException($"data root '{root}' must be an absolute path");
            all.Add(Canonical(root));
        }
        return new DataAccessPolicy(all.Distinct(StringComparer.Ordinal).ToArray());
    }

    /// <summary>The service's policy from its setting: roots separated by ';' (empty: named datasets only).</summary>
    public static DataAccessPolicy FromSetting(string? roots) =>
        WithinRoots((roots ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The allowed roots, canonical; null when unrestricted.</summary>
    public IReadOnlyList<string>? Roots => _roots;

    /// <summary>Throws a one-line <see cref="ScaleGrowException"/> naming the first path that is not allowed, missing,
    /// or not what the spec says it is. Reads at most <see cref="TextProbeBytes"/> of a text file, nothing else.
    /// </summary>
    public void Check(RunSpec spec)
    {
        if (spec.TextData is { } text) CheckText(text);
        else CheckImages(spec.Data);
    }

    private void CheckImages(DatasetSpec data)
    {
        if (data.Directory is { } given) CheckAllowed(given, "data.directory");
        foreach (var file in DatasetLoader.RequiredFiles(data)) CheckAllowed(file, "data file");
    }

    private void CheckText(TextDatasetSpec text)
    {
        if (text.Path is { } given) CheckAllowed(given, "textData.path");
        if (text.Name == TextDatasetSpec.Fortunes)
        {
            string folder = text.Path ?? FortuneReader.DefaultDirectory;
            if (!Directory.Exists(folder))
                throw new DataFormatException(text.Path is null
                    ? $"{folder}: the fortunes are not installed; install them with 'apt-get install fortunes' or give textData.path"
                    : $"{folder}: textData.path must be a folder of fortune files, and there is none");
            return;
        }
        string file = text.Path!;
        if (Directory.Exists(file)) throw new DataFormatException($"{file}: textData.path is a folder; {text.Name} needs a text file");
        if (!File.Exists(file)) throw new DataFormatException($"{file}: textData.path does not exist");
        CheckLooksLikeText(file);
    }

    /// <summary>UTF-8 without NUL bytes in its first <see cref="TextProbeBytes"/> (a cut last character allowed).</summary>
    private static void CheckLooksLikeText(string file)
    {
        byte[] head;
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
            head = new byte[(int)Math.Min(TextProbeBytes, stream.Length)];
            stream.ReadExactly(head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{file}: cannot read textData.path: {e.Message.ReplaceLineEndings(" ")}");
        }
        if (head.Length == 0) throw new DataFormatException($"{file}: textData.path is empty");
        if (Array.IndexOf(head, (byte)0) is var nul and >= 0)
            throw new DataFormatException($"{file}: textData.path is not a text file (a NUL byte at offset {nul})");
        int end = head.Length;
        // A multi-byte character cut by the probe's end is not an error: drop up to three trailing bytes of it.
        for (int back = 1; back <= 3 && end - back >= 0 && head.Length == TextProbeBytes; back++)
            if ((head[end - back] & 0xC0) == 0xC0) { end -= back; break; }
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(head, 0, end);
        }
        catch (DecoderFallbackException e)
        {
            throw new DataFormatException($"{file}: textData.path is not UTF-8 text (invalid byte at offset {e.Index})");
        }
    }

    private void CheckAllowed(string path, string field)
    {
        if (_roots is null) return;
        string canonical = Canonical(path);
        foreach (var root in _roots)
            if (canonical == root || canonical.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal))
                return;
        throw new InvalidSpecException($"{field} '{path}' is outside the data this service may read: use a named " +
                                       "dataset without a path, or a folder under one of the roots its operator " +
                                       "configured (setting ScaleGrow__DataRoots)");
    }

    /// <summary>The absolute path with <c>.</c>, <c>..</c> and every symbolic link on the way resolved.</summary>
    internal static string Canonical(string path, int depth = 0)
    {
        if (depth > 32) throw new InvalidSpecException($"'{path}': too many levels of symbolic links");
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string result = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(result, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget is { } target)
                next = Canonical(Path.IsPathFullyQualified(target) ? target : Path.Combine(result, target), depth + 1);
            result = next;
        }
        return result;
    }
}
