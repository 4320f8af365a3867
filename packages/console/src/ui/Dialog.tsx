import { type KeyboardEvent, type ReactNode, useEffect, useId, useRef } from "react";

/**
 * A modal dialog: labelled by its title, Escape closes it, focus moves in on open and back to what
 * opened it on close. Not <dialog>.showModal(), which jsdom (the component tests) does not implement.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ReactNode }) {
  const id = useId();
  const ref = useRef<HTMLDivElement>(null);
  const { onClose } = props;
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, select, textarea, button");
    first?.focus();
    return () => opener?.focus();
  }, []);
  return (
    <div className="backdrop">
      <div
        ref={ref}
        role="dialog"
        aria-modal="true"
        aria-labelledby={id}
        className="dialog"
        onKeyDown={(e) => {
          if (e.key === "Escape") onClose();
          if (e.key === "Tab") keepFocusInside(e, ref.current);
        }}
      >
        <h2 id={id}>{props.title}</h2>
        {props.children}
      </div>
    </div>
  );
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea";

/** Tab from the last control goes to the first (and Shift+Tab the other way): focus stays in the modal. */
function keepFocusInside(e: KeyboardEvent<HTMLDivElement>, box: HTMLDivElement | null) {
  const items = box ? [...box.querySelectorAll<HTMLElement>(FOCUSABLE)] : [];
  const first = items[0];
  const last = items[items.length - 1];
  if (!first || !last) return;
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}
