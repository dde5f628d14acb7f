/** Many documents at once: dropped on the zone or picked with the file dialog; the list can be pruned before upload. */
import { useRef, useState, type DragEvent } from "react";

function sizeOf(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function DropZone({ files, onChange }: { files: File[]; onChange: (files: File[]) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);

  // The same file picked twice (same name, size and date) is kept once.
  const add = (more: FileList | null) => {
    if (!more?.length) return;
    const key = (f: File) => `${f.name}/${f.size}/${f.lastModified}`;
    const seen = new Set(files.map(key));
    onChange([...files, ...[...more].filter((f) => !seen.has(key(f)))]);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    add(e.dataTransfer.files);
  };

  return (
    <div>
      <div
        className={`dropzone${over ? " dropzone-over" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        onClick={() => input.current?.click()}
        role="button"
        tabIndex={0}
        onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
      >
        <strong>Drop documents here</strong>
        <span className="muted">or click to choose files — text, Markdown, HTML, PDF, DOCX…</span>
        <input
          ref={input}
          type="file"
          multiple
          hidden
          data-testid="file-input"
          onChange={(e) => {
            add(e.target.files);
            e.target.value = "";
          }}
        />
      </div>
      {files.length > 0 && (
        <ul className="file-list" data-testid="file-list">
          {files.map((f, i) => (
            <li key={`${f.name}-${i}`}>
              <span>{f.name}</span>
              <span className="muted small">{sizeOf(f.size)}</span>
              <button type="button" className="link-button" onClick={() => onChange(files.filter((_, j) => j !== i))} aria-label={`Remove ${f.name}`}>
                remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
