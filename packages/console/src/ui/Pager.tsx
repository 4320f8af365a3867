export function Pager(p: { page: number; hasPrev: boolean; hasNext: boolean; prev: () => void; next: () => void }) {
  if (!p.hasPrev && !p.hasNext) return null;
  return (
    // A group (fieldset), not a <nav>: the page has one navigation landmark, the main menu.
    <fieldset className="pager" aria-label="Pages">
      <button type="button" onClick={p.prev} disabled={!p.hasPrev}>
        Previous
      </button>
      <span>Page {p.page}</span>
      <button type="button" onClick={p.next} disabled={!p.hasNext}>
        Next
      </button>
    </fieldset>
  );
}
