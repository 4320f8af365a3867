import { useEffect, useRef } from "react";
import type uPlot from "uplot";
import type { UsageBucket } from "../types";

/** Allowed and denied requests per bucket (denials summed over their codes). */
export function toSeries(buckets: UsageBucket[]): [number[], number[], number[]] {
  const t: number[] = [];
  const allowed: number[] = [];
  const denied: number[] = [];
  for (const b of buckets) {
    t.push(Date.parse(b.t) / 1000);
    allowed.push(b.allowed);
    denied.push(Object.values(b.denied).reduce((a, n) => a + n, 0));
  }
  return [t, allowed, denied];
}

/**
 * uPlot draws on a canvas (about 20 KB gzipped, against ~100 KB for chart libraries built on SVG
 * and a framework); the figure carries a text summary for screen readers and tests alike. It is
 * imported on first draw, so sign-in and the list pages load without it (and uPlot's module-level
 * matchMedia call never runs where there is no canvas).
 */
export function UsageChart({ title, buckets }: { title: string; buckets: UsageBucket[] }) {
  const box = useRef<HTMLDivElement>(null);
  const data = toSeries(buckets);
  const totalAllowed = data[1].reduce((a, n) => a + n, 0);
  const totalDenied = data[2].reduce((a, n) => a + n, 0);
  const dataKey = JSON.stringify(data);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // uPlot needs matchMedia and a 2D canvas; jsdom (component tests) has neither: draw nothing
    // there, the summary still renders.
    if (typeof window.matchMedia !== "function") return;
    const series = JSON.parse(dataKey) as uPlot.AlignedData;
    let plot: uPlot | undefined;
    let gone = false;
    const resize = () => plot?.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
    import("uplot").then(({ default: UPlot }) => {
      if (gone) return;
      plot = new UPlot(
        {
          width: Math.max(280, el.clientWidth),
          height: 220,
          series: [
            {},
            { label: "Allowed", stroke: "#2f855a", width: 2 },
            { label: "Denied", stroke: "#c53030", width: 2 },
          ],
          axes: [{ stroke: "currentColor" }, { stroke: "currentColor" }],
        },
        series,
        el,
      );
      window.addEventListener("resize", resize);
    }, chartUnavailable(el));
    return () => {
      gone = true;
      window.removeEventListener("resize", resize);
      plot?.destroy();
    };
  }, [dataKey]);
  return (
    <figure className="chart">
      <figcaption>
        {title}: {totalAllowed} allowed, {totalDenied} denied
      </figcaption>
      <div ref={box} aria-hidden="true" />
    </figure>
  );
}

/** The chart's script did not load (the server went away after the page did): say so in its place. */
const chartUnavailable = (el: HTMLDivElement) => () => {
  el.textContent = "The chart could not be loaded; the totals above are current.";
};
